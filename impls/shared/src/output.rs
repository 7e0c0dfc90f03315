//! JSON lines on stdout: `ready` once attached, periodic `stats`, and events.
//! Every line is flushed at once, since the harness and the tests read them as they come.

use std::io::Write;

use serde_json::{json, Map, Value};

/// Writes one JSON object as a line, with `"event": kind` first.
pub fn emit(kind: &str, fields: Value) {
    let mut obj = Map::new();
    obj.insert("event".into(), Value::String(kind.into()));
    if let Value::Object(rest) = fields {
        obj.extend(rest);
    }
    let mut out = std::io::stdout().lock();
    // A closed stdout (reader gone) must not take the loader down with programs attached;
    // it keeps running until it is told to stop.
    let _ = writeln!(out, "{}", Value::Object(obj));
    let _ = out.flush();
}

/// The `ready` line: printed once everything is loaded and attached.
pub fn ready(usecase: &str, lib: &str, iface: &str, extra: Value) {
    let mut fields = json!({ "usecase": usecase, "lib": lib, "iface": iface, "pid": std::process::id() });
    if let (Value::Object(f), Value::Object(e)) = (&mut fields, extra) {
        f.extend(e);
    }
    emit("ready", fields);
}
