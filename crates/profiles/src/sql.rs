//! Raw SQL written once for both backends. Statements use PostgreSQL's `$n` parameters;
//! SQLite gets `?n`, which it reads the same way. Bulk paths (multi-row inserts, set-based
//! updates) need raw SQL; simple reads still go through it to keep one style per module.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), values: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a parameter placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
        self
    }

    /// Appends `(p1, p2, …)` for an `IN` list; `(NULL)` when empty, which matches nothing.
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.text.push('(');
        let mut first = true;
        for value in values {
            if !first {
                self.text.push_str(", ");
            }
            first = false;
            self.bind(value);
        }
        if first {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }

    /// Appends `values` as a one-column table `alias (column)` to join against: one array
    /// parameter unnested on PostgreSQL, a `VALUES` list on SQLite. A lookup of thousands of
    /// keys written as a join stays on the index whatever the planner's statistics say; the
    /// same keys in an `IN` list were planned, on a table whose statistics were stale, as a
    /// filter comparing every row with every key (seconds instead of milliseconds).
    pub fn bind_table<V: ArrayElement>(
        &mut self,
        backend: DbBackend,
        values: Vec<V>,
        alias: &str,
        column: &str,
    ) -> &mut Self {
        match backend {
            DbBackend::Postgres => {
                self.push("unnest(").bind(V::array(values));
                self.push("::")
                    .push(V::PG_TYPE)
                    .push("[]) AS ")
                    .push(alias)
                    .push(" (")
                    .push(column)
                    .push(")");
            }
            _ if values.is_empty() => {
                self.push("(SELECT NULL AS ").push(column).push(" WHERE 0) AS ").push(alias);
            }
            _ => {
                self.push("(SELECT column1 AS ").push(column).push(" FROM (VALUES ");
                for (i, value) in values.into_iter().enumerate() {
                    self.push(if i == 0 { "(" } else { ", (" }).bind(value).push(")");
                }
                self.push(")) AS ").push(alias);
            }
        }
        self
    }

    pub fn statement(self, backend: DbBackend) -> Statement {
        let text = match backend {
            DbBackend::Postgres => self.text,
            _ => self.text.replace('$', "?"),
        };
        Statement::from_sql_and_values(backend, text, self.values)
    }

    pub async fn execute<C: ConnectionTrait>(self, conn: &C) -> Result<u64, sea_orm::DbErr> {
        let backend = conn.get_database_backend();
        Ok(conn.execute_raw(self.statement(backend)).await?.rows_affected())
    }

    pub async fn fetch_all<C: ConnectionTrait>(self, conn: &C) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        let backend = conn.get_database_backend();
        conn.query_all_raw(self.statement(backend)).await
    }

    pub async fn fetch_one<C: ConnectionTrait>(
        self,
        conn: &C,
    ) -> Result<Option<QueryResult>, sea_orm::DbErr> {
        let backend = conn.get_database_backend();
        conn.query_one_raw(self.statement(backend)).await
    }
}

/// A type whose values [`Sql::bind_table`] can send as one PostgreSQL array.
pub(crate) trait ArrayElement: Into<Value> + Sized {
    const PG_TYPE: &'static str;
    fn array(values: Vec<Self>) -> Value;
}

impl ArrayElement for String {
    const PG_TYPE: &'static str = "text";
    fn array(values: Vec<Self>) -> Value {
        values.into()
    }
}

impl ArrayElement for uuid::Uuid {
    const PG_TYPE: &'static str = "uuid";
    fn array(values: Vec<Self>) -> Value {
        values.into()
    }
}

/// A JSON value bound as the backend stores JSON (`jsonb` on PostgreSQL, text on SQLite).
pub(crate) fn json(value: &serde_json::Value) -> Value {
    Value::Json(Some(Box::new(value.clone())))
}
