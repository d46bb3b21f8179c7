//! Keyset pagination shared by every list. Cursors are opaque to clients: base64 of a
//! versioned UUID, so the encoding can change without breaking stored links.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Uuid);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("the cursor is malformed")]
    Malformed,
    #[error("`first` must be between 0 and {MAX_PAGE_SIZE}")]
    PageSize,
}

impl Cursor {
    pub const fn new(after: Uuid) -> Self {
        Self(after)
    }
    pub const fn position(&self) -> Uuid {
        self.0
    }
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}", self.0))
    }
    pub fn decode(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| CursorError::Malformed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError::Malformed)?;
        let uuid = text.strip_prefix("v1:").ok_or(CursorError::Malformed)?;
        Uuid::parse_str(uuid).map(Self).map_err(|_| CursorError::Malformed)
    }
}

/// What a caller asked for: at most `first` items strictly after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self, CursorError> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if (0..=MAX_PAGE_SIZE as i32).contains(&n) => n as u64,
            Some(_) => return Err(CursorError::PageSize),
        };
        let after = after.map(Cursor::decode).transpose()?;
        Ok(Self { first, after })
    }
}

/// One page of results, with what the caller needs to ask for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<(Cursor, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with `LIMIT first + 1`: the extra row only says that
    /// there is a next page.
    pub fn from_overfetched(mut rows: Vec<T>, request: PageRequest, position: impl Fn(&T) -> Uuid) -> Self {
        let has_next_page = rows.len() as u64 > request.first;
        rows.truncate(request.first as usize);
        let items = rows.into_iter().map(|row| (Cursor::new(position(&row)), row)).collect();
        Self { items, has_next_page, has_previous_page: request.after.is_some() }
    }

    /// Like [`Page::map`] for a conversion that can fail; the first failure is returned.
    pub fn try_map<U, E>(self, f: impl Fn(T) -> Result<U, E>) -> Result<Page<U>, E> {
        let items = self.items.into_iter().map(|(c, t)| f(t).map(|u| (c, u))).collect::<Result<_, E>>()?;
        Ok(Page { items, has_next_page: self.has_next_page, has_previous_page: self.has_previous_page })
    }

    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = Uuid::now_v7();
        let cursor = Cursor::new(id);
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        assert_eq!(Cursor::decode("not-a-cursor!"), Err(CursorError::Malformed));
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("v2:x")), Err(CursorError::Malformed));
    }

    #[test]
    fn page_request_bounds_first() {
        assert_eq!(PageRequest::parse(None, None).map(|p| p.first), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(PageRequest::parse(Some(-1), None), Err(CursorError::PageSize));
        assert_eq!(PageRequest::parse(Some(101), None), Err(CursorError::PageSize));
    }

    #[test]
    fn overfetched_rows_set_has_next_page() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let request = PageRequest { first: 2, after: None };
        let page = Page::from_overfetched(ids.clone(), request, |id| *id);
        assert!(page.has_next_page);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[1].0.position(), ids[1]);
    }
}
