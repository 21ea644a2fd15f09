//! One page of a list, for every list of the API: how many items a client may
//! ask for, the extra row that tells whether another page follows, and the
//! cursor to it. A list use case takes a [`PageSize`], reads `size.fetch()`
//! rows after its cursor and answers [`Page::cut`] of them, so no list can
//! lose the rows past a clamp again (a handler asking for `limit + 1` while the
//! use case clamped `limit` did).

/// The largest page of a list (search and similar incidents have their own,
/// smaller one).
pub const MAX_PAGE: u32 = 200;

/// How many items a client asked for: from 1 to the list's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// `n` if it is within `1..=max`; nothing else is a page size.
    pub fn new(n: i64, max: u32) -> Option<PageSize> {
        u32::try_from(n).ok().filter(|n| (1..=max).contains(n)).map(PageSize)
    }

    /// The default of a list, which must be a valid size.
    pub const fn default_of(n: u32) -> PageSize {
        PageSize(n)
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }

    /// Rows to read: one more than the page, which only says that another
    /// page follows.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

/// A keyset cursor, `key~id`: the sort key and the id of the last item
/// served (made of unreserved URL characters only).
pub fn keyset(key: i64, id: impl std::fmt::Display) -> String {
    format!("{key}~{id}")
}

/// Reads a cursor made by [`keyset`]; anything else is no cursor.
pub fn parse_keyset<I: std::str::FromStr>(s: &str) -> Option<(i64, I)> {
    let (key, id) = s.split_once('~')?;
    Some((key.parse().ok()?, id.parse().ok()?))
}

/// Reads a cursor that is a sequence number (an audit entry's, an event's,
/// a custody step's): a positive integer.
pub fn parse_seq(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| *n > 0)
}

/// One page of items, and the cursor of the next page (absent on the last).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page from rows read with `size.fetch()`: a row beyond `size` means
    /// another page follows, and its cursor is that of the page's last item.
    pub fn cut(mut rows: Vec<T>, size: PageSize, cursor: impl FnOnce(&T) -> String) -> Page<T> {
        let more = rows.len() > size.get();
        rows.truncate(size.get());
        let next_cursor = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_gives_a_cursor_and_is_not_served() {
        let size = PageSize::new(3, 200).expect("size");
        let p = Page::cut(vec![1, 2, 3, 4], size, |n| n.to_string());
        assert_eq!((p.items, p.next_cursor), (vec![1, 2, 3], Some("3".to_owned())));
        let last = Page::cut(vec![1, 2, 3], size, |n| n.to_string());
        assert_eq!((last.items, last.next_cursor), (vec![1, 2, 3], None));
        assert_eq!(PageSize::new(201, 200), None);
        assert_eq!(PageSize::new(0, 200), None);
        assert_eq!(PageSize::new(200, 200).map(PageSize::fetch), Some(201));
    }
}
