//! Recursive descent over the tokens: `or` binds loosest, then `and`, then `not`; parentheses
//! group. Errors name the line and column and say what would have made sense there.

use super::lex::{Spanned, Token, tokens};
use crate::ast::{
    Aggregate, ComputedTrait, Condition, MAX_DEPTH, MAX_LIST_VALUES, Measure, Op, PropertyFilter,
    SequenceStep, TimeUnit, Value, Window,
};
use crate::error::{Result, SegmentsError};
use kernel::SegmentId;

/// Longest text definition accepted.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

pub fn parse(text: &str) -> Result<Condition> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(SegmentsError::invalid(format!("a definition is at most {MAX_TEXT_BYTES} bytes")));
    }
    let mut parser = Parser { tokens: tokens(text)?, at: 0, depth: 0 };
    if parser.peek() == &Token::End {
        return Err(parser.error("the definition is empty: write a condition such as trait plan = \"pro\""));
    }
    let condition = parser.expression()?;
    if parser.peek() != &Token::End {
        let found = parser.peek().describe();
        return Err(
            parser.error(&format!("expected `and`, `or` or the end of the definition, found {found}"))
        );
    }
    condition.validate()?;
    Ok(condition)
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    depth: usize,
}

const CONDITION_HINT: &str = "a condition: trait NAME …, performed \"EVENT\" …, has KIND, consents to PURPOSE on \
                              CHANNEL, used channel|device NAME, in segment \"ID\", or a computed trait \
                              (first_seen, last_seen, event_count, revenue, first_channel)";

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)].token
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn error(&self, message: &str) -> SegmentsError {
        let spanned = &self.tokens[self.at.min(self.tokens.len() - 1)];
        SegmentsError::Syntax { line: spanned.line, column: spanned.column, message: message.to_owned() }
    }

    /// Whether the next token is the keyword `word` (keywords ignore case).
    fn at_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Token::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.at_keyword(word);
        if found {
            self.next();
        }
        found
    }

    fn expect_keyword(&mut self, word: &str, context: &str) -> Result<()> {
        if self.eat_keyword(word) {
            return Ok(());
        }
        let found = self.peek().describe();
        Err(self.error(&format!("expected `{word}` {context}, found {found}")))
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek(), Token::Symbol(s) if *s == symbol);
        if found {
            self.next();
        }
        found
    }

    fn expect_symbol(&mut self, symbol: &str, context: &str) -> Result<()> {
        if self.eat_symbol(symbol) {
            return Ok(());
        }
        let found = self.peek().describe();
        Err(self.error(&format!("expected `{symbol}` {context}, found {found}")))
    }

    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("the definition nests deeper than {MAX_DEPTH} levels")));
        }
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn expression(&mut self) -> Result<Condition> {
        let first = self.conjunction()?;
        if !self.at_keyword("or") {
            return Ok(first);
        }
        let mut conditions = vec![first];
        while self.eat_keyword("or") {
            conditions.push(self.conjunction()?);
        }
        Ok(Condition::Or { conditions })
    }

    fn conjunction(&mut self) -> Result<Condition> {
        let first = self.unary()?;
        if !self.at_keyword("and") {
            return Ok(first);
        }
        let mut conditions = vec![first];
        while self.eat_keyword("and") {
            conditions.push(self.unary()?);
        }
        Ok(Condition::And { conditions })
    }

    fn unary(&mut self) -> Result<Condition> {
        if self.eat_keyword("not") {
            let condition = self.nested(Self::unary)?;
            return Ok(Condition::Not { condition: Box::new(condition) });
        }
        if self.eat_symbol("(") {
            let condition = self.nested(Self::expression)?;
            self.expect_symbol(")", "to close the group")?;
            return Ok(condition);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Condition> {
        let Token::Word(word) = self.peek().clone() else {
            let found = self.peek().describe();
            return Err(self.error(&format!("expected {CONDITION_HINT}; found {found}")));
        };
        let keyword = word.to_ascii_lowercase();
        if let Some(computed) = ComputedTrait::parse(&keyword) {
            self.next();
            let (op, value) = self.comparison(computed.as_str())?;
            return Ok(Condition::Computed { name: computed, op, value });
        }
        match keyword.as_str() {
            "trait" => {
                self.next();
                let name = self.name("the trait's name")?;
                let (op, value) = self.comparison(&name)?;
                Ok(Condition::Trait { name, op, value })
            }
            "performed" => {
                self.next();
                self.event()
            }
            "has" => {
                self.next();
                let kind = self.word("an identity kind such as email, phone or maid")?;
                Ok(Condition::Identity { kind })
            }
            "consents" => {
                self.next();
                self.expect_keyword("to", "after `consents` (consents to marketing on email)")?;
                let purpose = self.word("a purpose such as marketing")?;
                self.expect_keyword("on", "after the purpose (consents to marketing on email)")?;
                let channel = if self.eat_keyword("any") {
                    self.expect_keyword("channel", "after `any`")?;
                    "*".to_owned()
                } else {
                    self.word("a channel such as email, or `any channel`")?
                };
                Ok(Condition::Consent { purpose, channel })
            }
            "used" => {
                self.next();
                if self.eat_keyword("channel") {
                    Ok(Condition::Channel { channel: self.word("a channel such as email or web")? })
                } else if self.eat_keyword("device") {
                    Ok(Condition::Device { device: self.name("a device such as ios or desktop")? })
                } else {
                    let found = self.peek().describe();
                    Err(self.error(&format!("expected `channel` or `device` after `used`, found {found}")))
                }
            }
            "in" => {
                self.next();
                self.expect_keyword("segment", "after `in` (in segment \"ID\")")?;
                let Token::Text(id) = self.peek().clone() else {
                    return Err(self.error("expected the segment's id in quotes after `in segment`"));
                };
                let id: SegmentId = id.parse().map_err(|_| self.error(&format!("\"{id}\" is not a segment id")))?;
                self.next();
                Ok(Condition::Segment { id })
            }
            _ => Err(self.error(&format!(
                "`{word}` does not start a condition (to compare a trait, write trait {word} …); expected {CONDITION_HINT}"
            ))),
        }
    }

    /// `performed "A" [where …] [then "B" [where …]]… [measure] [within N units]`.
    fn event(&mut self) -> Result<Condition> {
        let name = self.event_name()?;
        let filters = self.filters()?;
        let mut steps = vec![SequenceStep { name, filters }];
        while self.eat_keyword("then") {
            let name = self.event_name()?;
            let filters = self.filters()?;
            steps.push(SequenceStep { name, filters });
        }
        if steps.len() > 1 {
            self.expect_keyword("within", "after a sequence (performed \"A\" then \"B\" within 7 days)")?;
            let within = self.window()?;
            return Ok(Condition::Sequence { steps, within });
        }
        let measure = self.measure()?;
        let within = if self.eat_keyword("within") { Some(self.window()?) } else { None };
        let SequenceStep { name, filters } = steps.remove(0);
        Ok(Condition::Event { name, filters, measure, within })
    }

    fn event_name(&mut self) -> Result<String> {
        match self.peek().clone() {
            Token::Text(name) => {
                self.next();
                Ok(name)
            }
            other => Err(self.error(&format!(
                "expected the event's name in quotes (performed \"Order Completed\"), found {}",
                other.describe()
            ))),
        }
    }

    fn filters(&mut self) -> Result<Vec<PropertyFilter>> {
        if !self.eat_keyword("where") {
            return Ok(Vec::new());
        }
        let mut filters = Vec::new();
        if self.eat_symbol("(") {
            loop {
                filters.push(self.filter()?);
                if self.eat_symbol(")") {
                    break;
                }
                self.expect_keyword("and", "between the property conditions, or `)` to end them")?;
            }
        } else {
            filters.push(self.filter()?);
        }
        Ok(filters)
    }

    fn filter(&mut self) -> Result<PropertyFilter> {
        let property = self.name("a property name")?;
        let (op, value) = self.comparison(&property)?;
        Ok(PropertyFilter { property, op, value })
    }

    fn measure(&mut self) -> Result<Option<Measure>> {
        let Token::Word(word) = self.peek().clone() else { return Ok(None) };
        let Some(aggregate) = Aggregate::parse(&word.to_ascii_lowercase()) else { return Ok(None) };
        self.next();
        let property = if aggregate == Aggregate::Count {
            None
        } else {
            self.expect_symbol(
                "(",
                &format!("after `{}` ({}(revenue) >= 100)", aggregate.as_str(), aggregate.as_str()),
            )?;
            let property = self.name("the property to add up")?;
            self.expect_symbol(")", "after the property")?;
            Some(property)
        };
        let op = self.operator()?;
        if !matches!(op, Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte) {
            return Err(self.error("a count or a sum compares with =, !=, <, <=, > or >="));
        }
        let Token::Number(value) = self.peek().clone() else {
            let found = self.peek().describe();
            return Err(self.error(&format!(
                "expected a number to compare the {} with, found {found}",
                aggregate.as_str()
            )));
        };
        self.next();
        Ok(Some(Measure { aggregate, property, op, value }))
    }

    fn window(&mut self) -> Result<Window> {
        let Token::Number(amount) = self.peek().clone() else {
            let found = self.peek().describe();
            return Err(self.error(&format!("expected a duration such as 30 days, found {found}")));
        };
        if amount.fract() != 0.0 || !(1.0..=1_000_000.0).contains(&amount) {
            return Err(self.error("a duration is a whole number of minutes, hours, days or weeks"));
        }
        self.next();
        let unit = match self.peek().clone() {
            Token::Word(word) => TimeUnit::parse(&word.to_ascii_lowercase()),
            _ => None,
        };
        let Some(unit) = unit else {
            let found = self.peek().describe();
            return Err(self.error(&format!("expected minutes, hours, days or weeks, found {found}")));
        };
        self.next();
        Ok(Window { amount: amount as u32, unit })
    }

    fn operator(&mut self) -> Result<Op> {
        let op = match self.peek().clone() {
            Token::Symbol(symbol) => Op::ALL.into_iter().find(|op| op.symbol() == symbol),
            Token::Word(word) => {
                let word = word.to_ascii_lowercase();
                Op::ALL.into_iter().find(|op| op.symbol() == word)
            }
            _ => None,
        };
        let Some(op) = op else {
            let found = self.peek().describe();
            return Err(self.error(&format!(
                "expected a comparison (=, !=, <, <=, >, >=, in, contains, starts_with or exists), found {found}"
            )));
        };
        self.next();
        Ok(op)
    }

    /// The operator and value after a name: `= "pro"`, `in ("a", "b")`, `exists`,
    /// `< 30 days ago`.
    fn comparison(&mut self, subject: &str) -> Result<(Op, Option<Value>)> {
        let op = self.operator().map_err(|e| match e {
            SegmentsError::Syntax { line, column, message } => {
                SegmentsError::Syntax { line, column, message: format!("after {subject}: {message}") }
            }
            other => other,
        })?;
        match op {
            Op::Exists => Ok((op, None)),
            Op::In => {
                self.expect_symbol("(", "after `in` (in (\"a\", \"b\"))")?;
                let mut items = Vec::new();
                loop {
                    items.push(self.value()?);
                    if items.len() > MAX_LIST_VALUES {
                        return Err(self.error(&format!("`in` takes at most {MAX_LIST_VALUES} values")));
                    }
                    if self.eat_symbol(")") {
                        break;
                    }
                    self.expect_symbol(",", "between the values, or `)` to end the list")?;
                }
                Ok((op, Some(Value::List(items))))
            }
            _ => Ok((op, Some(self.value()?))),
        }
    }

    fn value(&mut self) -> Result<Value> {
        match self.peek().clone() {
            Token::Text(text) => {
                self.next();
                Ok(Value::Text(text))
            }
            Token::Number(number) => {
                let is_duration = matches!(&self.tokens.get(self.at + 1).map(|s| &s.token),
                    Some(Token::Word(w)) if TimeUnit::parse(&w.to_ascii_lowercase()).is_some());
                if is_duration {
                    let ago = self.window()?;
                    self.expect_keyword("ago", "after the duration (30 days ago)")?;
                    return Ok(Value::Ago { ago });
                }
                self.next();
                Ok(Value::Number(number))
            }
            Token::Word(word) if word.eq_ignore_ascii_case("true") => {
                self.next();
                Ok(Value::Bool(true))
            }
            Token::Word(word) if word.eq_ignore_ascii_case("false") => {
                self.next();
                Ok(Value::Bool(false))
            }
            other => Err(self.error(&format!(
                "expected a value: a text in quotes, a number, true, false or a time such as 30 days ago; found {}",
                other.describe()
            ))),
        }
    }

    /// A bare name or one in quotes (for names with spaces or that are keywords).
    fn name(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Token::Word(word) | Token::Text(word) => {
                self.next();
                Ok(word)
            }
            other => Err(self.error(&format!("expected {what}, found {}", other.describe()))),
        }
    }

    /// A lower-case word: a channel, a purpose, an identity kind.
    fn word(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Token::Word(word) => {
                self.next();
                Ok(word.to_ascii_lowercase())
            }
            other => Err(self.error(&format!("expected {what}, found {}", other.describe()))),
        }
    }
}
