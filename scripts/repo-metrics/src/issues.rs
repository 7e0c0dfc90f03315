//! Ticket statistics from an export of the GitHub REST API's
//! `GET /repos/{owner}/{repo}/issues`, made with `gh api --paginate` (README.md has the exact
//! commands). The endpoint lists pull requests too; the thesis counted them, the corrected
//! method leaves them out.
//!
//! The file is one JSON array of items, or several (one per page, as `gh api --paginate`
//! prints them back to back), or an array of such arrays (`--slurp`). Of each item only
//! `created_at`, `closed_at`, `updated_at` (RFC 3339, or null), `state` and `pull_request` are
//! read; `number` names it in errors. The thesis method needs `updated_at` and `state`.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Method, Window};

/// One ticket (issue or pull request), times as Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue {
    pub created: i64,
    pub closed: Option<i64>,
    /// Last update; absent in hand-made exports.
    pub updated: Option<i64>,
    /// `state` was "closed" when exported; None when the export lacks `state`.
    pub state_closed: Option<bool>,
    pub pull_request: bool,
}

/// Ticket statistics, as a [`Method`] defines them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueStats {
    /// Thesis: tickets listed (updated since `since`, created by `until` 00:00).
    /// Corrected: issues created in the window.
    pub opened: u64,
    /// Thesis: of those, the ones closed when exported. Corrected: issues closed in the window,
    /// whenever created.
    pub closed: u64,
    /// Percent closed. Thesis: closed / opened, floored to a whole percent (the script's
    /// `closed (%)`, the values `quantiles.py` cuts). Corrected: of the issues created in the
    /// window, the percentage closed by its end. None: nothing opened.
    pub closed_percent: Option<f64>,
    /// Thesis: mean whole days from creation to closing of the closed tickets, truncated.
    /// Corrected: of the issues created in the window, the mean days each stayed open, up to
    /// the window's end for those still open then. None: nothing to average.
    pub mean_age_days: Option<f64>,
}

#[derive(Deserialize)]
struct RawIssue {
    number: Option<u64>,
    created_at: String,
    closed_at: Option<String>,
    updated_at: Option<String>,
    state: Option<String>,
    pull_request: Option<Value>,
}

/// Reads an export file.
pub fn load(path: &Path) -> Result<Vec<Issue>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading issues export {}", path.display()))?;
    parse(&text).with_context(|| format!("issues export {}", path.display()))
}

/// Parses the text of an export file.
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
        issues.push(Issue {
            created: at("created_at", &raw.created_at)?,
            closed: raw.closed_at.as_deref().map(|s| at("closed_at", s)).transpose()?,
            updated: raw.updated_at.as_deref().map(|s| at("updated_at", s)).transpose()?,
            state_closed: raw.state.as_deref().map(|s| s == "closed"),
            pull_request: raw.pull_request.is_some(),
        });
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

/// Which tickets a method counts, for reports.
pub fn basis(window: &Window, method: Method) -> String {
    match method {
        Method::Thesis => format!(
            "issues and pull requests updated since {}T00:00:00Z, created by {}T00:00:00Z; closed = state closed \
             when exported",
            window.since, window.until
        ),
        Method::Corrected => format!("issues (no pull requests) created in {}", window.describe(method)),
    }
}

pub fn stats(issues: &[Issue], window: &Window, method: Method) -> Result<IssueStats> {
    match method {
        Method::Thesis => thesis_stats(issues, window),
        Method::Corrected => Ok(corrected_stats(issues, window)),
    }
}

/// `ticket_statistics.py`: PyGithub's `get_issues(state, since)` lists issues and pull
/// requests last updated at or after `since`; the script keeps those created at or before the
/// cutoff, splits them by their state when it ran, floors the percentage and averages the whole
/// days (timedelta.days) of the closed ones, truncated by int().
fn thesis_stats(issues: &[Issue], window: &Window) -> Result<IssueStats> {
    let (start, cutoff) = (window.start(), window.thesis_end());
    let mut listed = Vec::new();
    for i in issues {
        let (Some(updated), Some(closed)) = (i.updated, i.state_closed) else {
            bail!(
                "the thesis method needs `updated_at` and `state` in every item (export with `gh api`, see README.md)"
            );
        };
        if updated >= start && i.created <= cutoff {
            listed.push((i, closed));
        }
    }
    let mut days = Vec::new();
    for (i, _) in listed.iter().filter(|(_, closed)| *closed) {
        let closed_at = i.closed.context("a closed ticket without `closed_at`")?;
        days.push((closed_at - i.created).div_euclid(86_400));
    }
    let (opened, closed) = (listed.len() as u64, days.len() as u64);
    Ok(IssueStats {
        opened,
        closed,
        closed_percent: (opened > 0).then(|| (closed * 100 / opened) as f64),
        // The script fails without a closed ticket; no value here.
        mean_age_days: (closed > 0).then(|| (days.iter().sum::<i64>() / closed as i64) as f64),
    })
}

fn corrected_stats(issues: &[Issue], window: &Window) -> IssueStats {
    let end = window.end();
    let issues: Vec<&Issue> = issues.iter().filter(|i| !i.pull_request).collect();
    let opened: Vec<&Issue> = issues.iter().copied().filter(|i| window.contains(i.created)).collect();
    let closed = issues.iter().filter(|i| i.closed.is_some_and(|t| window.contains(t))).count() as u64;
    let n = opened.len() as f64;
    let (closed_percent, mean_age_days) = if opened.is_empty() {
        (None, None)
    } else {
        let closed_by_end = opened.iter().filter(|i| i.closed.is_some_and(|t| t < end)).count() as f64;
        // Closed after the window's end counts as open at its end: the numbers do not depend
        // on when the export was made.
        let open_until = |i: &Issue| i.closed.map_or(end, |t| t.min(end));
        let days: f64 = opened.iter().map(|i| (open_until(i) - i.created) as f64 / 86_400.0).sum();
        (Some(100.0 * closed_by_end / n), Some(days / n))
    };
    IssueStats { opened: opened.len() as u64, closed, closed_percent, mean_age_days }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slurp_and_pull_requests() {
        let page1 = r#"[{"number":1,"created_at":"2023-01-01T00:00:00Z","closed_at":null,"state":"open"},
                        {"number":2,"created_at":"2023-01-01T00:00:00Z","closed_at":null,"pull_request":{"url":"x"}}]"#;
        let page2 = r#"[{"number":3,"created_at":"2023-01-02T00:00:00+01:00","closed_at":"2023-01-03T00:00:00Z",
                         "updated_at":"2023-01-04T00:00:00Z","state":"closed"}]"#;
        let issues = parse(&format!("{page1}\n{page2}")).unwrap();
        assert_eq!(issues.len(), 3);
        assert!(issues[1].pull_request && !issues[0].pull_request);
        assert_eq!(issues[0].state_closed, Some(false));
        let third = Issue {
            created: 1_672_614_000,
            closed: Some(1_672_704_000),
            updated: Some(1_672_790_400),
            state_closed: Some(true),
            pull_request: false,
        };
        assert_eq!(issues[2], third);
        assert_eq!(parse(&format!("[{page1},{page2}]")).unwrap(), issues);
        assert!(parse("").unwrap().is_empty());
    }

    fn ticket(created: &str, closed: Option<&str>, updated: &str, pr: bool) -> Issue {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        Issue {
            created: t(created),
            closed: closed.map(t),
            updated: Some(t(updated)),
            state_closed: Some(closed.is_some()),
            pull_request: pr,
        }
    }

    #[test]
    fn both_definitions() {
        let w = Window::new("2023-01-01".parse().unwrap(), "2023-01-31".parse().unwrap()).unwrap();
        let list = [
            // Created before the window, updated in it: the thesis lists it, corrected does not.
            ticket("2022-11-01T00:00:00Z", Some("2023-01-10T00:00:00Z"), "2023-01-10T00:00:00Z", false),
            // A pull request: thesis only. 1.5 days open = 1 whole day.
            ticket("2023-01-02T00:00:00Z", Some("2023-01-03T12:00:00Z"), "2023-01-03T12:00:00Z", true),
            // Created at the thesis' cutoff second (listed), closed after the window.
            ticket("2023-01-31T00:00:00Z", Some("2023-02-10T00:00:00Z"), "2023-02-10T00:00:00Z", false),
            // One second later: corrected only; still open.
            ticket("2023-01-31T00:00:01Z", None, "2023-01-31T00:00:01Z", false),
            // Last updated the second before the window: the thesis does not list it.
            ticket("2022-12-01T00:00:00Z", None, "2022-12-31T23:59:59Z", false),
        ];
        let thesis = stats(&list, &w, Method::Thesis).unwrap();
        // Ages 70, 1 and 10 days: mean 27; 3 of 3 closed.
        assert_eq!(thesis, IssueStats { opened: 3, closed: 3, closed_percent: Some(100.0), mean_age_days: Some(27.0) });
        let corrected = stats(&list, &w, Method::Corrected).unwrap();
        // Two issues created in the window, neither closed by its end, open 1 day and 1 s less.
        assert_eq!((corrected.opened, corrected.closed, corrected.closed_percent), (2, 1, Some(0.0)));
        assert!((corrected.mean_age_days.unwrap() - (2.0 * 86_400.0 - 1.0) / 86_400.0 / 2.0).abs() < 1e-12);
        // Two of three closed: 66 %, floored.
        let two_of_three = [list[0], list[1], ticket("2023-01-05T00:00:00Z", None, "2023-01-06T00:00:00Z", false)];
        let t = stats(&two_of_three, &w, Method::Thesis).unwrap();
        assert_eq!((t.closed_percent, t.mean_age_days), (Some(66.0), Some(35.0)));
        let open_only = [two_of_three[2]];
        assert_eq!(stats(&open_only, &w, Method::Thesis).unwrap().mean_age_days, None);
        let bare = parse(r#"[{"created_at":"2023-01-02T00:00:00Z","closed_at":null}]"#).unwrap();
        let e = stats(&bare, &w, Method::Thesis).unwrap_err().to_string();
        assert!(e.contains("needs `updated_at` and `state`"), "{e}");
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
