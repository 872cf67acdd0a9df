//! "One thing" services (一件事一次办): the merged form, input mapping, and cross-field rules.
//!
//! A service is a graph of matters. Its one form is built from the matters' own schemas: every
//! form field a matter input or a lookup query takes is asked once, with the matter's title and
//! type; what a lookup or an earlier step provides is never asked (四不提交). These are the pure
//! parts; the orchestrator runs the lookups, the adapters and the graph.

use gateway_base::config::{RuleCheck, RuleConfig, Source};
use gateway_base::model::FieldProblem;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How one step's matter input is made: target field path → source.
pub type InputMapping = Vec<(Vec<String>, Source)>;

/// What sources resolve against.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    /// The applicant's form.
    pub form: Option<&'a Value>,
    /// Lookup answers by lookup id.
    pub lookups: Option<&'a Value>,
    /// Outputs of approved steps by step id.
    pub outputs: BTreeMap<String, Value>,
}

/// The value at a dotted path.
pub fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| v.get(seg))
}

/// Set the value at a dotted path, creating objects on the way.
pub fn set_path(target: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = target;
    for seg in parents {
        if !node.get(seg).is_some_and(Value::is_object) {
            node[seg.as_str()] = json!({});
        }
        node = &mut node[seg.as_str()];
    }
    node[last.as_str()] = value;
}

impl Sources<'_> {
    /// The value a source names, if it is there.
    pub fn resolve(&self, source: &Source) -> Option<Value> {
        let found = match source {
            Source::Form(path) => self.form.and_then(|f| get_path(f, path)),
            Source::Lookup(id, path) => self
                .lookups
                .and_then(|l| l.get(id))
                .and_then(|l| get_path(l, path)),
            Source::Step(id, path) => self.outputs.get(id).and_then(|o| get_path(o, path)),
            Source::Const(text) => return Some(Value::String(text.clone())),
        };
        found.filter(|v| !v.is_null()).cloned()
    }

    /// A matter's input from its mapping; sources not there yet are left out.
    pub fn build_input(&self, mapping: &InputMapping) -> Value {
        let mut input = json!({});
        for (target, source) in mapping {
            if let Some(value) = self.resolve(source) {
                set_path(&mut input, target, value);
            }
        }
        input
    }
}

/// Where a matter's field problem belongs on the form: `None` when the field is filled later
/// by an earlier step's output (not the applicant's to fix).
pub fn problem_on_form(step_id: &str, mapping: &InputMapping, field: &str) -> Option<String> {
    let matched = mapping.iter().find_map(|(target, source)| {
        let target = target.join(".");
        let rest = if field == target {
            Some(String::new())
        } else {
            field
                .strip_prefix(&format!("{target}."))
                .map(|r| format!(".{r}"))
        };
        rest.map(|rest| (source, rest))
    });
    match matched {
        Some((Source::Form(path), rest)) => Some(format!("{}{rest}", path.join("."))),
        Some((Source::Step(..), _)) => None,
        Some((Source::Lookup(id, path), rest)) => {
            Some(format!("lookups.{id}.{}{rest}", path.join(".")))
        }
        Some((Source::Const(_), _)) => Some(format!("{step_id}.{field}")),
        // A field of the matter no mapping feeds; if the whole input is wrong, say which step.
        None if field.is_empty() => Some(String::new()),
        None => Some(format!("{step_id}.{field}")),
    }
}

/// Every cross-field rule broken by the context (rules whose sides are not there are skipped:
/// the missing field is already a problem of its own).
pub fn check_rules(rules: &[RuleConfig], sources: &Sources<'_>) -> Vec<FieldProblem> {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    rules
        .iter()
        .filter_map(|rule| {
            let (left, right) = (
                sources.resolve(&Source::parse(&rule.left).ok()?)?,
                sources.resolve(&Source::parse(&rule.right).ok()?)?,
            );
            let holds = match rule.check {
                RuleCheck::Equals => text(&left) == text(&right),
                RuleCheck::BirthDateMatches => match sdk::ids::resident_id(&text(&left)) {
                    Ok(id) => id.birth_date.to_string() == text(&right),
                    // A bad number is reported by its own format check.
                    Err(_) => true,
                },
            };
            (!holds).then(|| FieldProblem::new(&rule.field, "rule", &rule.message))
        })
        .collect()
}

/// The schema of the field at a dotted path inside an object schema, and whether every level of
/// the path is required.
pub fn schema_at<'s>(schema: &'s Value, path: &[String]) -> Option<(&'s Value, bool)> {
    let mut node = schema;
    let mut required = true;
    for seg in path {
        let listed = node["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|v| v == seg));
        required &= listed;
        node = node.get("properties")?.get(seg)?;
    }
    Some((node, required))
}

/// Builds the one form of a service, field by field.
#[derive(Debug)]
pub struct FormBuilder {
    form: Value,
}

impl FormBuilder {
    /// An empty form titled with the service's name.
    pub fn new(title: &str, description: &str) -> Self {
        FormBuilder {
            form: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object", "title": title, "description": description,
                "properties": {}, "required": [], "additionalProperties": false,
            }),
        }
    }

    /// Ask for a field once: the first matter or lookup to need it gives its schema.
    pub fn field(&mut self, path: &[String], schema: &Value, required: bool) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = &mut self.form;
        for seg in parents {
            let properties = node["properties"]
                .as_object_mut()
                .expect("form objects have properties");
            let child = properties
                .entry(seg.clone())
                .or_insert_with(|| json!({"type": "object", "properties": {}, "required": []}));
            if !child.get("properties").is_some_and(Value::is_object) {
                child["properties"] = Value::Object(Map::new());
            }
            if required {
                add_required(node, seg);
            }
            node = &mut node["properties"][seg.as_str()];
        }
        let properties = node["properties"]
            .as_object_mut()
            .expect("form objects have properties");
        properties
            .entry(last.clone())
            .or_insert_with(|| schema.clone());
        if required {
            add_required(node, last);
        }
    }

    /// True when the form asks for this top-level field.
    pub fn has(&self, name: &str) -> bool {
        self.form["properties"].get(name).is_some()
    }

    /// The finished form.
    pub fn finish(self) -> Value {
        self.form
    }
}

fn add_required(node: &mut Value, name: &str) {
    if !node["required"].is_array() {
        node["required"] = json!([]);
    }
    let list = node["required"].as_array_mut().expect("just made an array");
    if !list.iter().any(|v| v == name) {
        list.push(Value::String(name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn inputs_are_built_from_form_lookups_and_outputs() {
        let form = json!({"name": "福州餐饮", "rep": {"name": "李四"}});
        let lookups = json!({"property": {"unit_number": "351001012010GB01859F00040015"}});
        let mut sources = Sources {
            form: Some(&form),
            lookups: Some(&lookups),
            outputs: BTreeMap::new(),
        };
        sources.outputs.insert(
            "licence".into(),
            json!({"credit_code": "91350100M000100Y43"}),
        );
        let mapping: InputMapping = vec![
            (path("enterprise_name"), Source::parse("form.name").unwrap()),
            (
                path("legal_representative.name"),
                Source::parse("form.rep.name").unwrap(),
            ),
            (
                path("unit_number"),
                Source::parse("lookups.property.unit_number").unwrap(),
            ),
            (
                path("credit_code"),
                Source::parse("steps.licence.outputs.credit_code").unwrap(),
            ),
            (
                path("seal_types"),
                Source::parse("const:法定名称章").unwrap(),
            ),
            (path("missing"), Source::parse("form.nothing").unwrap()),
        ];
        let input = sources.build_input(&mapping);
        assert_eq!(
            input,
            json!({"enterprise_name": "福州餐饮", "legal_representative": {"name": "李四"},
                   "unit_number": "351001012010GB01859F00040015", "credit_code": "91350100M000100Y43",
                   "seal_types": "法定名称章"})
        );
    }

    #[test]
    fn matter_problems_are_placed_on_the_form_field_that_feeds_them() {
        let mapping: InputMapping = vec![
            (
                path("legal_representative"),
                Source::parse("form.rep").unwrap(),
            ),
            (
                path("credit_code"),
                Source::parse("steps.licence.outputs.credit_code").unwrap(),
            ),
        ];
        assert_eq!(
            problem_on_form("seal", &mapping, "legal_representative.id_number").as_deref(),
            Some("rep.id_number")
        );
        assert_eq!(
            problem_on_form("seal", &mapping, "credit_code"),
            None,
            "filled by an earlier step"
        );
        assert_eq!(
            problem_on_form("seal", &mapping, "seal_types").as_deref(),
            Some("seal.seal_types")
        );
    }

    #[test]
    fn rules_compare_sources_and_birth_dates() {
        let form =
            json!({"seller": {"id_number": "11010519491231002X"}, "birth_date": "1949-12-30"});
        let lookups = json!({"property": {"owner": {"id_number": "34052419800101001X"}}});
        let sources = Sources {
            form: Some(&form),
            lookups: Some(&lookups),
            outputs: BTreeMap::new(),
        };
        let rules = vec![
            RuleConfig {
                check: RuleCheck::Equals,
                left: "form.seller.id_number".into(),
                right: "lookups.property.owner.id_number".into(),
                field: "seller.id_number".into(),
                message: "卖方不是登记权利人".into(),
            },
            RuleConfig {
                check: RuleCheck::BirthDateMatches,
                left: "form.seller.id_number".into(),
                right: "form.birth_date".into(),
                field: "birth_date".into(),
                message: "出生日期与身份证号码不符".into(),
            },
            RuleConfig {
                check: RuleCheck::Equals,
                left: "form.absent".into(),
                right: "const:x".into(),
                field: "absent".into(),
                message: "skipped".into(),
            },
        ];
        let problems = check_rules(&rules, &sources);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, vec!["seller.id_number", "birth_date"]);
    }

    #[test]
    fn the_form_asks_each_field_once_with_the_matters_schema() {
        let matter = json!({"type": "object", "required": ["rep"], "properties": {
            "rep": {"type": "object", "title": "法定代表人", "required": ["name"], "properties": {"name": {"type": "string", "title": "姓名"}}},
            "scope": {"type": "string", "title": "经营范围"}}});
        let mut form = FormBuilder::new("企业开办", "");
        let (rep, required) = schema_at(&matter, &path("rep")).unwrap();
        form.field(&path("legal_representative"), rep, required);
        form.field(&path("legal_representative"), rep, required);
        let (scope, required) = schema_at(&matter, &path("scope")).unwrap();
        assert!(!required);
        form.field(&path("business_scope"), scope, required);
        let form = form.finish();
        assert_eq!(
            form["properties"]["legal_representative"]["title"],
            "法定代表人"
        );
        assert_eq!(form["required"], json!(["legal_representative"]));
        assert_eq!(form["properties"].as_object().unwrap().len(), 2);
    }
}
