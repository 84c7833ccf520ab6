//! One rule's words: names, quoted strings, braces, commas, operators, and ` . ` joining a
//! concatenation.

/// Words that begin a statement: an argument list ends before them.
const STATEMENTS: [&str; 14] = [
    "accept",
    "drop",
    "reject",
    "jump",
    "goto",
    "return",
    "continue",
    "counter",
    "log",
    "comment",
    "queue",
    "dnat",
    "snat",
    "masquerade",
];

/// The words of a rule, read front to back.
pub struct Tokens {
    words: Vec<String>,
    at: usize,
}

/// Splits a rule into words.
pub fn tokens(line: &str) -> Result<Tokens, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | ';' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                words.push(format!("\"{s}\""));
            }
            '{' | '}' | ',' => {
                chars.next();
                words.push(c.to_string());
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ',' | '"' | ';') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                words.push(w);
            }
        }
    }
    Ok(Tokens { words, at: 0 })
}

impl Tokens {
    /// The next word, without taking it.
    pub fn peek(&self) -> Option<String> {
        self.peek_at(0)
    }

    /// The word `n` after the next one.
    pub fn peek_at(&self, n: usize) -> Option<String> {
        self.words.get(self.at + n).cloned()
    }

    /// Takes the next word (a quoted string loses its quotes).
    pub fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.at)?.clone();
        self.at += 1;
        Some(w.trim_matches('"').to_owned())
    }

    /// Takes the next word as written (quotes kept).
    pub fn next_raw(&mut self) -> Option<String> {
        let w = self.words.get(self.at)?.clone();
        self.at += 1;
        Some(w)
    }

    /// Takes a compare operator, if one comes next.
    pub fn op(&mut self) -> Option<super::CmpOp> {
        use super::CmpOp;
        let op = match self.peek()?.as_str() {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Neq,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Lte,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Gte,
            _ => return None,
        };
        self.at += 1;
        Some(op)
    }

    /// Takes this word and its arguments, up to the next statement; returns them.
    pub fn skip_arguments(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self.next().into_iter().collect();
        let mut depth = 0;
        while let Some(w) = self.peek() {
            if depth == 0 && STATEMENTS.contains(&w.as_str()) {
                break;
            }
            depth += i32::from(w == "{") - i32::from(w == "}");
            out.push(w);
            self.at += 1;
        }
        out
    }

    /// Takes `{ a, b c, d }`: the items, each as its words joined by spaces (quotes kept).
    pub fn braced(&mut self) -> Result<Vec<String>, String> {
        if self.next_raw().as_deref() != Some("{") {
            return Err("expected {".into());
        }
        let mut items = Vec::new();
        let mut item: Vec<String> = Vec::new();
        loop {
            match self.next_raw().ok_or("a set is not closed")?.as_str() {
                "}" => break,
                "," => items.push(std::mem::take(&mut item).join(" ")),
                w => item.push(w.to_owned()),
            }
        }
        if !item.is_empty() {
            items.push(item.join(" "));
        }
        Ok(items)
    }
}
