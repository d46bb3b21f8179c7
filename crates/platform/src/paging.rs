//! Keyset pagination over UUIDv7 ids (time-ordered), shared by every list.

use kernel::PageRequest;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// Restricts `query` to the page after the request's cursor, in `order` of `id`, fetching one
/// row more than asked so [`kernel::Page::from_overfetched`] can tell whether a next page exists.
pub fn keyset<E: EntityTrait, C: ColumnTrait>(
    query: Select<E>,
    id: C,
    page: PageRequest,
    order: Order,
) -> Select<E> {
    let query = match (page.after, order) {
        (Some(after), Order::OldestFirst) => query.filter(id.gt(after.position())),
        (Some(after), Order::NewestFirst) => query.filter(id.lt(after.position())),
        (None, _) => query,
    };
    let query = match order {
        Order::OldestFirst => query.order_by_asc(id),
        Order::NewestFirst => query.order_by_desc(id),
    };
    query.limit(page.first + 1)
}
