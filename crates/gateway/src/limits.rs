//! Query limits that async-graphql does not have built in. Depth and complexity use its own
//! validation; aliases are counted here, right after parsing and before any resolver runs,
//! because a thousand aliases of one expensive field are a cheap denial of service.

use crate::error::coded;
use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};
use kernel::ErrorCode;
use std::sync::Arc;

pub(crate) struct AliasLimit {
    pub max_aliases: usize,
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension { max_aliases: self.max_aliases })
    }
}

struct AliasLimitExtension {
    max_aliases: usize,
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
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
        Ok(document)
    }
}

pub(crate) fn count_aliases(document: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + walk(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let in_operations: usize = document.operations.iter().map(|(_, op)| walk(&op.node.selection_set.node)).sum();
    let in_fragments: usize = document.fragments.values().map(|f| walk(&f.node.selection_set.node)).sum();
    in_operations + in_fragments
}

/// Errors from parsing and validation carry no code; give them the code clients expect.
pub(crate) fn ensure_codes(errors: &mut [ServerError]) {
    for error in errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if !has_code {
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
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
