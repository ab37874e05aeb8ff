//! Canonical XML 1.1 without comments (W3C `xml-c14n11`), for the XML-DSig over NVIDIA's RIMs.
//!
//! Only what a RIM needs: elements, attributes, namespace declarations and text. Processing
//! instructions and comments are dropped (the "without comments" form; RIMs carry none), and a
//! document with a DOCTYPE is refused by the parser before it gets here.
//!
//! Prefixes are taken from the source text because the DOM keeps only namespace URIs, and a RIM
//! binds the same URI to both the default namespace and `ns0`: the canonical form must keep the
//! prefix each element was written with.

use roxmltree::{Node, NodeType};

/// The canonical form of `node`'s subtree, leaving out `skip` (the enveloped `Signature`).
///
/// For a document subset whose apex is `node`, every namespace in scope at the apex is rendered
/// on it, as inclusive canonicalisation requires; below it a declaration is rendered only where
/// it changes the binding its parent had.
pub(crate) fn canonicalize(src: &str, node: Node<'_, '_>, skip: Option<Node<'_, '_>>) -> String {
    let mut out = String::new();
    element(src, node, None, skip, &mut out);
    out
}

fn element(
    src: &str,
    node: Node<'_, '_>,
    parent: Option<Node<'_, '_>>,
    skip: Option<Node<'_, '_>>,
    out: &mut String,
) {
    if skip.is_some_and(|s| s == node) {
        return;
    }
    match node.node_type() {
        NodeType::Text => {
            escape_text(node.text().unwrap_or_default(), out);
            return;
        }
        NodeType::Element => {}
        _ => return,
    }
    let qname = element_qname(src, node);
    out.push('<');
    out.push_str(qname);

    let mut namespaces: Vec<(&str, &str)> = node
        .namespaces()
        .filter(|ns| ns.name() != Some("xml"))
        .filter(|ns| {
            parent.is_none_or(|p| {
                !p.namespaces()
                    .any(|pns| pns.name() == ns.name() && pns.uri() == ns.uri())
            })
        })
        .map(|ns| (ns.name().unwrap_or(""), ns.uri()))
        .collect();
    namespaces.sort();
    for (prefix, uri) in namespaces {
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }

    let mut attributes: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or(""),
                a.name(),
                &src[a.range_qname()],
                a.value(),
            )
        })
        .collect();
    attributes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, qname, value) in attributes {
        out.push(' ');
        out.push_str(qname);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
    for child in node.children() {
        element(src, child, Some(node), skip, out);
    }
    out.push_str("</");
    out.push_str(qname);
    out.push('>');
}

/// The element's name as written in its start tag (`ns0:Payload`, `SoftwareIdentity`).
fn element_qname<'s>(src: &'s str, node: Node<'_, '_>) -> &'s str {
    let tag = &src[node.range().start + 1..];
    let end = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(tag.len());
    &tag[..end]
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_sorting_escapes_and_empty_elements() {
        let src = "<r xmlns='urn:a' xmlns:p='urn:a' b='2' a='1&amp;&lt;'>\n  <p:e z='x' p:y='1'/><f>t&gt;</f></r>";
        let doc = roxmltree::Document::parse(src).unwrap();
        let c = canonicalize(src, doc.root_element(), None);
        assert_eq!(
            c,
            "<r xmlns=\"urn:a\" xmlns:p=\"urn:a\" a=\"1&amp;&lt;\" b=\"2\">\n  <p:e z=\"x\" p:y=\"1\"></p:e><f>t&gt;</f></r>"
        );
        // A subset renders the namespaces in scope at its apex.
        let e = doc.root_element().first_element_child().unwrap();
        assert_eq!(
            canonicalize(src, e, None),
            "<p:e xmlns=\"urn:a\" xmlns:p=\"urn:a\" z=\"x\" p:y=\"1\"></p:e>"
        );
    }
}
