//! Splits the text form into tokens, each with the line and column it starts at.

use crate::error::{Result, SegmentsError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A keyword or a bare name: letters, digits, `_` and `.`, not starting with a digit.
    Word(String),
    Text(String),
    Number(f64),
    Symbol(&'static str),
    End,
}

impl Token {
    /// How an error message shows it.
    pub fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("`{w}`"),
            Token::Text(t) => format!("the text \"{t}\""),
            Token::Number(n) => format!("the number {n}"),
            Token::Symbol(s) => format!("`{s}`"),
            Token::End => "the end of the definition".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Spanned {
    pub token: Token,
    pub line: usize,
    pub column: usize,
}

const SYMBOLS: [&str; 9] = ["!=", "<=", ">=", "=", "<", ">", "(", ")", ","];

pub(crate) fn tokens(text: &str) -> Result<Vec<Spanned>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let error = |line, column, message: String| SegmentsError::Syntax { line, column, message };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            i += 1;
            line += 1;
            column = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            column += 1;
            continue;
        }
        if c == '#' {
            // A comment runs to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let (start_line, start_column) = (line, column);
        let token = if c == '"' {
            let mut value = String::new();
            i += 1;
            column += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(error(
                        start_line,
                        start_column,
                        "this text has no closing quote (\")".into(),
                    ));
                };
                i += 1;
                column += 1;
                match c {
                    '"' => break,
                    '\n' => {
                        return Err(error(
                            start_line,
                            start_column,
                            "a text must end on the line it starts".into(),
                        ));
                    }
                    '\\' => {
                        let escaped = chars.get(i).copied();
                        i += 1;
                        column += 1;
                        match escaped {
                            Some('"') => value.push('"'),
                            Some('\\') => value.push('\\'),
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some('r') => value.push('\r'),
                            _ => {
                                return Err(error(
                                    line,
                                    column - 2,
                                    "in a text, \\ is followed by \", \\, n, t or r".into(),
                                ));
                            }
                        }
                    }
                    c => value.push(c),
                }
            }
            Token::Text(value)
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            column += i - start;
            match literal.parse::<f64>() {
                Ok(n) if n.is_finite() => Token::Number(n),
                _ => return Err(error(start_line, start_column, format!("`{literal}` is not a number"))),
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            column += i - start;
            Token::Word(chars[start..i].iter().collect())
        } else if let Some(symbol) =
            SYMBOLS.iter().find(|s| s.chars().enumerate().all(|(k, sc)| chars.get(i + k) == Some(&sc)))
        {
            i += symbol.len();
            column += symbol.len();
            Token::Symbol(symbol)
        } else {
            return Err(error(start_line, start_column, format!("`{c}` is not allowed here")));
        };
        out.push(Spanned { token, line: start_line, column: start_column });
    }
    out.push(Spanned { token: Token::End, line, column });
    Ok(out)
}
