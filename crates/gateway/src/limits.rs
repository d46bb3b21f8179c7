//! Query checks that async-graphql does not have built in, run right after parsing and before
//! any resolver (depth and complexity use its own validation):
//! - aliases are counted, because a thousand aliases of one expensive field are a cheap denial
//!   of service;
//! - with introspection off, `__schema` and `__type` are refused with an error, where
//!   async-graphql would silently answer `null`.

use crate::error::coded;
use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Field, Selection, SelectionSet},
};
use kernel::ErrorCode;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub(crate) struct QueryGuard {
    pub max_aliases: usize,
    pub introspection: bool,
}

impl ExtensionFactory for QueryGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for QueryGuard {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.max_aliases {
            let error = coded(
                ErrorCode::BadUserInput,
                format!("the query uses {aliases} aliases; the limit is {}", self.max_aliases),
            );
            return Err(error.into_server_error(Default::default()));
        }
        if !self.introspection && uses_introspection(&document) {
            let error = coded(ErrorCode::BadUserInput, "introspection is disabled on this server");
            return Err(error.into_server_error(Default::default()));
        }
        Ok(document)
    }
}

/// Adds up `count(field)` over every field of every operation and fragment (each fragment
/// counted once, where it is defined).
fn sum_over_fields(document: &ExecutableDocument, count: &dyn Fn(&Field) -> usize) -> usize {
    fn walk(set: &SelectionSet, count: &dyn Fn(&Field) -> usize) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => count(&field.node) + walk(&field.node.selection_set.node, count),
                Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node, count),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let in_operations: usize =
        document.operations.iter().map(|(_, op)| walk(&op.node.selection_set.node, count)).sum();
    let in_fragments: usize =
        document.fragments.values().map(|f| walk(&f.node.selection_set.node, count)).sum();
    in_operations + in_fragments
}

pub(crate) fn count_aliases(document: &ExecutableDocument) -> usize {
    sum_over_fields(document, &|field| usize::from(field.alias.is_some()))
}

fn uses_introspection(document: &ExecutableDocument) -> bool {
    sum_over_fields(document, &|field| usize::from(matches!(field.name.node.as_str(), "__schema" | "__type")))
        > 0
}

/// Errors from parsing and validation carry no code; give them the code clients expect.
pub(crate) fn ensure_codes(errors: &mut [ServerError]) {
    for error in errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::BadUserInput.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_aliases_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: me { id } b: me { x: id } ...F } fragment F on QueryRoot { c: me { id } }",
        )
        .unwrap();
        assert_eq!(super::count_aliases(&doc), 4);
    }
}
