//! Issue statistics from an export of the GitHub REST API's
//! `GET /repos/{owner}/{repo}/issues?state=all`, made with
//! `gh api --paginate 'repos/OWNER/REPO/issues?state=all&per_page=100' > issues.json`.
//!
//! The file is one JSON array of issues, or several (one per page, as `gh api --paginate`
//! prints them back to back), or an array of such arrays (`--slurp`). Of each item only
//! `created_at`, `closed_at` (RFC 3339, or null) and `pull_request` (present on pull requests,
//! which the endpoint lists too and which are skipped) are read; `number` names it in errors.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Window;

/// One issue, times as Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue {
    pub created: i64,
    pub closed: Option<i64>,
}

/// Issue statistics of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueStats {
    /// Issues created in the window.
    pub opened: u64,
    /// Issues closed in the window, whenever they were created.
    pub closed: u64,
    /// Of the issues created in the window, the share closed by its end (None: none created).
    pub share_closed: Option<f64>,
    /// Of the issues created in the window, the mean days each stayed open, counted up to the
    /// window's end for those still open then (None: none created).
    pub mean_age_days: Option<f64>,
}

#[derive(Deserialize)]
struct RawIssue {
    number: Option<u64>,
    created_at: String,
    closed_at: Option<String>,
    pull_request: Option<Value>,
}

/// Reads an export file; pull requests are dropped.
pub fn load(path: &Path) -> Result<Vec<Issue>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading issues export {}", path.display()))?;
    parse(&text).with_context(|| format!("issues export {}", path.display()))
}

/// Parses the text of an export file; pull requests are dropped.
pub fn parse(text: &str) -> Result<Vec<Issue>> {
    let mut items = Vec::new();
    for (page, value) in serde_json::Deserializer::from_str(text).into_iter::<Value>().enumerate() {
        let value = value.with_context(|| format!("page {}: invalid JSON", page + 1))?;
        let Value::Array(list) = value else {
            bail!("page {}: expected a JSON array of issues, found {}", page + 1, kind(&value));
        };
        for item in list {
            match item {
                Value::Array(inner) => items.extend(inner),
                other => items.push(other),
            }
        }
    }
    let mut issues = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let raw: RawIssue = serde_json::from_value(item).with_context(|| format!("item {}", i + 1))?;
        let at = |field: &str, s: &str| {
            let what = raw.number.map_or(format!("item {}", i + 1), |n| format!("issue #{n}"));
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp())
                .map_err(|e| anyhow!("{what}: `{field}` {s:?} is not an RFC 3339 time: {e}"))
        };
        if raw.pull_request.is_some() {
            continue;
        }
        let created = at("created_at", &raw.created_at)?;
        let closed = raw.closed_at.as_deref().map(|s| at("closed_at", s)).transpose()?;
        issues.push(Issue { created, closed });
    }
    Ok(issues)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn stats(issues: &[Issue], window: &Window) -> IssueStats {
    let end = window.end();
    let opened: Vec<&Issue> = issues.iter().filter(|i| window.contains(i.created)).collect();
    let closed = issues.iter().filter(|i| i.closed.is_some_and(|t| window.contains(t))).count() as u64;
    let n = opened.len() as f64;
    let (share_closed, mean_age_days) = if opened.is_empty() {
        (None, None)
    } else {
        let closed_by_end = opened.iter().filter(|i| i.closed.is_some_and(|t| t < end)).count() as f64;
        // Closed after the window's end counts as open at its end: the numbers do not depend
        // on when the export was made.
        let open_until = |i: &Issue| i.closed.map_or(end, |t| t.min(end));
        let days: f64 = opened.iter().map(|i| (open_until(i) - i.created) as f64 / 86_400.0).sum();
        (Some(closed_by_end / n), Some(days / n))
    };
    IssueStats { opened: opened.len() as u64, closed, share_closed, mean_age_days }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slurp_and_pull_requests() {
        let page1 = r#"[{"number":1,"created_at":"2023-01-01T00:00:00Z","closed_at":null,"state":"open"},
                        {"number":2,"created_at":"2023-01-01T00:00:00Z","closed_at":null,"pull_request":{"url":"x"}}]"#;
        let page2 = r#"[{"number":3,"created_at":"2023-01-02T00:00:00+01:00","closed_at":"2023-01-03T00:00:00Z"}]"#;
        let issues = parse(&format!("{page1}\n{page2}")).unwrap();
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[1], Issue { created: 1_672_614_000, closed: Some(1_672_704_000) });
        assert_eq!(parse(&format!("[{page1},{page2}]")).unwrap(), issues);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_say_where() {
        let e = format!("{:#}", parse(r#"[{"number":7,"created_at":"yesterday"}]"#).unwrap_err());
        assert!(e.contains("issue #7") && e.contains("created_at"), "{e}");
        let e = format!("{:#}", parse(r#"[{"number":7}]"#).unwrap_err());
        assert!(e.contains("item 1") && e.contains("created_at"), "{e}");
        let e = format!("{:#}", parse(r#"{"message":"Not Found"}"#).unwrap_err());
        assert!(e.contains("page 1: expected a JSON array of issues, found an object"), "{e}");
        let e = format!("{:#}", parse("[] [").unwrap_err());
        assert!(e.contains("page 2: invalid JSON"), "{e}");
    }
}
