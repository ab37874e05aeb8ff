//! Reading get-method results into typed values.

use crate::chain::{ChainError, GetMethodResult, StackEntry};
use crate::tlb::{self, ArcCell, TonAddress};

/// Reads a get-method's stack front to back with typed accessors.
#[derive(Debug)]
pub struct StackReader {
    method: &'static str,
    items: std::vec::IntoIter<StackEntry>,
}

impl StackReader {
    /// Reader over the result of `method`.
    pub fn new(method: &'static str, r: GetMethodResult) -> Self {
        Self {
            method,
            items: r.stack.into_iter(),
        }
    }

    fn err(&self, reason: String) -> ChainError {
        ChainError::Stack {
            method: self.method.to_owned(),
            reason,
        }
    }

    fn next(&mut self, what: &str) -> Result<StackEntry, ChainError> {
        self.items
            .next()
            .ok_or_else(|| self.err(format!("missing {what}")))
    }

    /// An integer.
    pub fn int(&mut self, what: &str) -> Result<i128, ChainError> {
        match self.next(what)? {
            StackEntry::Int(v) => Ok(v),
            other => Err(self.err(format!("{what}: expected int, got {other:?}"))),
        }
    }

    /// A non-negative integer that fits `T`.
    pub fn uint<T: TryFrom<i128>>(&mut self, what: &str) -> Result<T, ChainError> {
        let v = self.int(what)?;
        T::try_from(v).map_err(|_| self.err(format!("{what}: {v} out of range")))
    }

    /// A TVM bool (-1 / 0).
    pub fn bool(&mut self, what: &str) -> Result<bool, ChainError> {
        Ok(self.int(what)? != 0)
    }

    /// A 256-bit unsigned integer as bytes.
    pub fn bits256(&mut self, what: &str) -> Result<[u8; 32], ChainError> {
        let e = self.next(what)?;
        e.as_u256()
            .ok_or_else(|| self.err(format!("{what}: expected uint256, got {e:?}")))
    }

    /// A cell (or slice).
    pub fn cell(&mut self, what: &str) -> Result<ArcCell, ChainError> {
        let e = self.next(what)?;
        e.as_cell()
            .cloned()
            .ok_or_else(|| self.err(format!("{what}: expected cell, got {e:?}")))
    }

    /// A cell or null.
    pub fn maybe_cell(&mut self, what: &str) -> Result<Option<ArcCell>, ChainError> {
        match self.next(what)? {
            StackEntry::Null => Ok(None),
            StackEntry::Tuple(t) if t.is_empty() => Ok(None),
            StackEntry::Cell(c) | StackEntry::Slice(c) => Ok(Some(c)),
            other => Err(self.err(format!("{what}: expected cell or null, got {other:?}"))),
        }
    }

    /// A slice holding addr_std or addr_none, or null (Tolk's `address?`).
    pub fn maybe_address(&mut self, what: &'static str) -> Result<Option<TonAddress>, ChainError> {
        let Some(c) = self.maybe_cell(what)? else {
            return Ok(None);
        };
        let mut p = c.parser();
        tlb::load_maybe_address(&mut p, what).map_err(|e| self.err(format!("{what}: {e}")))
    }

    /// Ends the reading: entries left over mean the getter returns another layout than the one
    /// read (a contract changed), which must not pass silently.
    pub fn finish(mut self) -> Result<(), ChainError> {
        let left = self.items.len();
        match self.items.next() {
            None => Ok(()),
            Some(_) => Err(self.err(format!("{left} entries left unread"))),
        }
    }

    /// A slice holding addr_std.
    pub fn address(&mut self, what: &'static str) -> Result<TonAddress, ChainError> {
        self.maybe_address(what)?
            .ok_or_else(|| self.err(format!("{what}: addr_none")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(stack: Vec<StackEntry>) -> StackReader {
        StackReader::new(
            "get_x",
            GetMethodResult {
                exit_code: 0,
                gas_used: 0,
                stack,
            },
        )
    }

    /// A getter that returns more than was read is an error naming the method, not a silent
    /// misreading.
    #[test]
    fn finish_refuses_entries_left_unread() {
        let mut r = reader(vec![StackEntry::Int(1), StackEntry::Int(2)]);
        assert_eq!(r.uint::<u8>("a").unwrap(), 1);
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("get_x") && e.contains("1 entries left"), "{e}");
        let mut r = reader(vec![StackEntry::Int(1)]);
        r.int("a").unwrap();
        r.finish().unwrap();
    }
}
