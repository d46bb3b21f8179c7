//! Raw SQL written once for both backends. Statements use PostgreSQL's `$n` parameters;
//! SQLite gets `?n`, which it reads the same way. Bulk paths (multi-row inserts, set-based
//! updates) need raw SQL; simple reads still go through it to keep one style per module.

use crate::paging::Order;
use kernel::PageRequest;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value, sea_query::ArrayType};

#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    values: Vec<Value>,
    /// Where each `IN` list sits in `text` and which parameter holds it: rendered for the
    /// backend when the statement is made, since only then is the backend known.
    lists: Vec<BoundList>,
}

#[derive(Debug)]
struct BoundList {
    /// The byte range of `(SELECT unnest($n::type[]))` in the text.
    range: std::ops::Range<usize>,
    /// The parameter (0-based) that holds the list as an array.
    slot: usize,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), ..Self::default() }
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

    /// Appends the rows of a multi-row `VALUES`: `($1, $2), ($3, $4)`, one tuple per row, each
    /// value a parameter. Bulk inserts and set-based updates build their rows with this.
    pub fn values<R: IntoIterator<Item = Value>>(&mut self, rows: impl IntoIterator<Item = R>) -> &mut Self {
        for (i, row) in rows.into_iter().enumerate() {
            self.text.push_str(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    self.text.push_str(", ");
                }
                self.bind(value);
            }
            self.text.push(')');
        }
        self
    }

    /// Appends the right-hand side of an `IN` for `values`: one array parameter in a subquery
    /// on PostgreSQL, `(?, ?, …)` on SQLite. The subquery is planned as a join, which stays
    /// linear whatever the statistics say; a list of thousands of parameters was planned, on a
    /// table whose statistics were stale, as a filter comparing every row with every value
    /// (seconds instead of milliseconds). An empty list matches nothing.
    pub fn bind_list<V: ArrayElement>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        let elements: Vec<Value> = values.into_iter().map(Into::into).collect();
        let start = self.text.len();
        self.text.push_str("(SELECT unnest(");
        self.bind(Value::Array(V::ARRAY_TYPE, Some(Box::new(elements))));
        self.text.push_str("::");
        self.text.push_str(V::PG_TYPE);
        self.text.push_str("[]))");
        self.lists.push(BoundList { range: start..self.text.len(), slot: self.values.len() - 1 });
        self
    }

    /// Appends the keyset page of [`platform::paging::keyset`] for raw statements: the rows
    /// after the request's cursor in `order` of the id `column`, one more than asked so
    /// [`kernel::Page::from_overfetched`] can tell whether a next page exists.
    pub fn keyset(&mut self, column: &str, page: &PageRequest, order: Order) -> &mut Self {
        let (after, direction) = match order {
            Order::OldestFirst => (" > ", ""),
            Order::NewestFirst => (" < ", " DESC"),
        };
        if let Some(cursor) = &page.after {
            self.push(" AND ").push(column).push(after).bind(cursor.position());
        }
        self.push(" ORDER BY ").push(column).push(direction).push(" LIMIT ").bind((page.first + 1) as i64)
    }

    pub fn statement(self, backend: DbBackend) -> Statement {
        let Self { mut text, mut values, lists } = self;
        if backend != DbBackend::Postgres {
            // SQLite has no arrays: each list becomes its own parameters, the first in the
            // array's slot (a typed NULL for an empty list, which matches nothing), the rest
            // appended after every other parameter.
            for list in lists.iter().rev() {
                let Value::Array(array_type, items) =
                    std::mem::replace(&mut values[list.slot], Value::Bool(None))
                else {
                    continue;
                };
                let mut items = items.map(|items| *items).unwrap_or_default().into_iter();
                values[list.slot] = items.next().unwrap_or_else(|| null_of(&array_type));
                let mut rendered = format!("(${}", list.slot + 1);
                for item in items {
                    values.push(item);
                    rendered.push_str(&format!(", ${}", values.len()));
                }
                rendered.push(')');
                text.replace_range(list.range.clone(), &rendered);
            }
            (text, values) = anonymous_parameters(&text, values);
        }
        Statement::from_sql_and_values(backend, text, values)
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

/// A type whose values [`Sql::bind_list`] sends as one PostgreSQL array.
pub trait ArrayElement: Into<Value> {
    const PG_TYPE: &'static str;
    const ARRAY_TYPE: ArrayType;
}

impl ArrayElement for String {
    const PG_TYPE: &'static str = "text";
    const ARRAY_TYPE: ArrayType = ArrayType::String;
}

impl ArrayElement for uuid::Uuid {
    const PG_TYPE: &'static str = "uuid";
    const ARRAY_TYPE: ArrayType = ArrayType::Uuid;
}

/// A NULL of an array's element type, for SQLite's empty lists.
fn null_of(array_type: &ArrayType) -> Value {
    match array_type {
        ArrayType::Uuid => Value::Uuid(None),
        _ => Value::String(None),
    }
}

/// Rewrites `$n` parameters as SQLite's anonymous `?`, with the values in the order the text
/// uses them (a parameter used twice is bound twice). Numbered `?NNN` parameters cost SQLite a
/// linear lookup each, when the statement is parsed and again when each is bound: quadratic in
/// the parameters, so a 1,000-row insert (17,000 of them) took ten times longer per row than
/// 100-row ones. Anonymous ones are bound by position.
fn anonymous_parameters(text: &str, values: Vec<Value>) -> (String, Vec<Value>) {
    let mut rendered = String::with_capacity(text.len());
    let mut ordered = Vec::with_capacity(values.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rendered.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>().ok().and_then(|n| values.get(n.wrapping_sub(1))) {
            Some(value) => {
                rendered.push('?');
                ordered.push(value.clone());
            }
            None => rendered.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &after[digits..];
    }
    rendered.push_str(rest);
    (rendered, ordered)
}

/// A JSON value bound as the backend stores JSON (`jsonb` on PostgreSQL, text on SQLite).
pub fn json(value: &serde_json::Value) -> Value {
    Value::Json(Some(Box::new(value.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_renders_one_tuple_per_row() {
        let mut sql = Sql::new("INSERT INTO t (a, b) VALUES ");
        sql.values([vec![Value::from(1), Value::from("x")], vec![Value::from(2), Value::from("y")]]);
        assert_eq!(sql.text, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        assert_eq!(sql.values.len(), 4);
    }
    use uuid::Uuid;

    fn two_lists() -> (Sql, Uuid, Uuid) {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut sql = Sql::new("SELECT 1 FROM t WHERE tenant_id = ");
        sql.bind(a)
            .push(" AND id IN ")
            .bind_list([a, b])
            .push(" AND name IN ")
            .bind_list(Vec::<String>::new())
            .push(" AND kind = ")
            .bind("email");
        (sql, a, b)
    }

    #[test]
    fn lists_are_one_array_on_postgres() {
        let (sql, a, b) = two_lists();
        let statement = sql.statement(DbBackend::Postgres);
        assert_eq!(
            statement.sql,
            "SELECT 1 FROM t WHERE tenant_id = $1 AND id IN (SELECT unnest($2::uuid[])) \
             AND name IN (SELECT unnest($3::text[])) AND kind = $4"
        );
        let values = statement.values.expect("values").0;
        assert_eq!(values.len(), 4);
        assert_eq!(values[1], Value::from(vec![a, b]));
        assert_eq!(values[2], Value::Array(ArrayType::String, Some(Box::new(Vec::new()))));
    }

    #[test]
    fn lists_are_expanded_on_sqlite() {
        let (sql, a, b) = two_lists();
        let statement = sql.statement(DbBackend::Sqlite);
        // The first element keeps the list's slot, the others go after every parameter; an
        // empty list is a NULL, which matches nothing.
        // Parameters are anonymous, the values in the order the text uses them.
        assert_eq!(
            statement.sql,
            "SELECT 1 FROM t WHERE tenant_id = ? AND id IN (?, ?) AND name IN (?) AND kind = ?"
        );
        let values = statement.values.expect("values").0;
        assert_eq!(
            values,
            vec![Value::from(a), Value::from(a), Value::from(b), Value::String(None), Value::from("email")]
        );
    }

    #[test]
    fn sqlite_parameters_used_twice_are_bound_twice() {
        let mut sql = Sql::new("SELECT ");
        sql.bind(1).push(" + ").bind(2);
        let sql = Sql { text: format!("{} + $1, 'price in $'", sql.text), ..sql };
        let statement = sql.statement(DbBackend::Sqlite);
        assert_eq!(statement.sql, "SELECT ? + ? + ?, 'price in $'");
        let values = statement.values.expect("values").0;
        assert_eq!(values, vec![Value::from(1), Value::from(2), Value::from(1)]);
    }
}
