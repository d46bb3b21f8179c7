//! Relay connections from domain pages.

use crate::error::GqlResult;
use async_graphql::{
    OutputType,
    connection::{Connection, Edge},
};
use kernel::{Page, PageRequest};

pub(crate) fn page_request(first: Option<i32>, after: Option<String>) -> async_graphql::Result<PageRequest> {
    PageRequest::parse(first, after.as_deref()).gql()
}

pub(crate) fn into_connection<T, N: OutputType>(
    page: Page<T>,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let mut connection = Connection::new(page.has_previous_page, page.has_next_page);
    connection
        .edges
        .extend(page.items.into_iter().map(|(cursor, item)| Edge::new(cursor.encode(), node(item))));
    connection
}
