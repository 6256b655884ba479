//! Parameter overrides: operator-defined edits of the JSON request body.

use serde_json::{Map, Value};

/// Compiled `set` / `default` / `drop` rules for top-level body fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    set: Vec<(String, Value)>,
    default: Vec<(String, Value)>,
    drop: Vec<String>,
}

impl Overrides {
    pub fn new(
        set: Vec<(String, Value)>,
        default: Vec<(String, Value)>,
        drop: Vec<String>,
    ) -> Self {
        Overrides { set, default, drop }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.default.is_empty() && self.drop.is_empty()
    }

    /// Apply in a fixed order: drop, then default, then set — so `set` always
    /// wins and a dropped field can be given a fresh default.
    pub fn apply(&self, body: &mut Map<String, Value>) {
        for field in &self.drop {
            body.remove(field);
        }
        for (k, v) in &self.default {
            if !body.contains_key(k) || body.get(k) == Some(&Value::Null) {
                body.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &self.set {
            body.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_default_and_drop() {
        let o = Overrides::new(
            vec![("max_tokens".into(), json!(100))],
            vec![
                ("temperature".into(), json!(0.2)),
                ("user".into(), json!("gw")),
            ],
            vec!["logit_bias".into()],
        );
        let mut body = json!({"max_tokens": 4000, "user": "alice", "logit_bias": {"1": 2}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        o.apply(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"max_tokens": 100, "user": "alice", "temperature": 0.2})
        );
    }
}
