//! Cocoon worker node.
