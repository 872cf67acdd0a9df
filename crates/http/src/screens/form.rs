//! The one form of a service, as HTML fields: read from the service's JSON Schema (its Chinese
//! titles, grouped by the objects it holds), filled back from a posted form, and each
//! pre-review problem put on the field it names.

use gateway_base::model::FieldProblem;
use serde_json::{Map, Value};

/// How a field is asked.
pub(crate) enum Widget {
    /// One line of text.
    Text,
    /// A number (`integer` or `number`).
    Number { integer: bool },
    /// One of a list.
    Select(Vec<String>),
    /// Any of a list (an array of an enum).
    Checks(Vec<String>),
    /// 是 / 否.
    Yes,
    /// One item a line (any other array).
    Lines,
}

/// One field of the form.
pub(crate) struct Field {
    /// Dotted path (`legal_representative.id_number`), as pre-review names it.
    pub(crate) path: String,
    /// The HTML id and name: `f.<path>`.
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) widget: Widget,
    pub(crate) required: bool,
    /// What it holds now (one value; several for checks and lines).
    pub(crate) values: Vec<String>,
    pub(crate) problems: Vec<String>,
}

impl Field {
    pub(crate) fn value(&self) -> &str {
        self.values.first().map(String::as_str).unwrap_or_default()
    }
    pub(crate) fn has(&self, option: &str) -> bool {
        self.values.iter().any(|v| v == option)
    }
    pub(crate) fn lines(&self) -> String {
        self.values.join("\n")
    }
    pub(crate) fn input_type(&self) -> &'static str {
        match self.widget {
            Widget::Number { .. } => "number",
            _ => "text",
        }
    }
    pub(crate) fn step(&self) -> &'static str {
        match self.widget {
            Widget::Number { integer: true } => "1",
            _ => "any",
        }
    }
    pub(crate) fn kind(&self) -> &'static str {
        match self.widget {
            Widget::Text | Widget::Number { .. } => "input",
            Widget::Select(_) => "select",
            Widget::Checks(_) => "checks",
            Widget::Yes => "yes",
            Widget::Lines => "lines",
        }
    }
    /// The lookup button beside this field, if the gateway can fill the form from it.
    pub(crate) fn lookup(&self) -> Option<super::clerk::lookup::Button> {
        super::clerk::lookup::button_for(&self.path)
    }
    pub(crate) fn options(&self) -> &[String] {
        match &self.widget {
            Widget::Select(o) | Widget::Checks(o) => o,
            _ => &[],
        }
    }
}

/// Fields under one heading: the form's own, or one object's (法定代表人 …).
pub(crate) struct Group {
    pub(crate) title: String,
    pub(crate) fields: Vec<Field>,
}

/// The groups of a schema: the top level's plain fields first (基本信息), then one group per
/// object (its nested objects' fields in it, by dotted path).
pub(crate) fn groups(schema: &Map<String, Value>) -> Vec<Group> {
    let mut top = Group {
        title: "基本信息".into(),
        fields: Vec::new(),
    };
    let mut groups = Vec::new();
    let required = required_of(schema);
    for (name, property) in properties(schema) {
        if is_object(property) {
            let mut group = Group {
                title: title_of(property, name),
                fields: Vec::new(),
            };
            collect(property, name, "", &mut group.fields);
            groups.push(group);
        } else {
            top.fields.push(field(
                name,
                title_of(property, name),
                property,
                required.contains(&name.as_str()),
            ));
        }
    }
    if !top.fields.is_empty() {
        groups.insert(0, top);
    }
    groups
}

fn collect(schema: &Value, path: &str, prefix: &str, fields: &mut Vec<Field>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let required = required_of(object);
    for (name, property) in properties(object) {
        let path = format!("{path}.{name}");
        let title = format!("{prefix}{}", title_of(property, name));
        if is_object(property) {
            collect(property, &path, &format!("{title} · "), fields);
        } else {
            fields.push(field(
                &path,
                title,
                property,
                required.contains(&name.as_str()),
            ));
        }
    }
}

fn properties(schema: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn required_of(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_object(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
        || schema.get("properties").is_some()
}

fn title_of(schema: &Value, name: &str) -> String {
    schema
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string()
}

fn enum_of(schema: &Value) -> Option<Vec<String>> {
    schema.get("enum").and_then(Value::as_array).map(|values| {
        values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    })
}

fn field(path: &str, title: String, schema: &Value, required: bool) -> Field {
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let widget = match kind {
        "integer" => Widget::Number { integer: true },
        "number" => Widget::Number { integer: false },
        "boolean" => Widget::Yes,
        "array" => match schema.get("items").and_then(enum_of) {
            Some(options) => Widget::Checks(options),
            None => Widget::Lines,
        },
        _ => match enum_of(schema) {
            Some(options) => Widget::Select(options),
            None => Widget::Text,
        },
    };
    Field {
        path: path.to_string(),
        name: format!("f.{path}"),
        title,
        widget,
        required,
        values: Vec::new(),
        problems: Vec::new(),
    }
}

/// Fill the fields from a posted form's pairs, and build the JSON form they make: a blank
/// field is left out (pre-review says if it was required), a number that does not read as one
/// is sent as its text (pre-review names it).
pub(crate) fn fill(groups: &mut [Group], pairs: &[(String, String)]) -> Value {
    let mut form = Map::new();
    for field in groups.iter_mut().flat_map(|g| g.fields.iter_mut()) {
        let given: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == field.name)
            .map(|(_, v)| v.as_str())
            .collect();
        let value = match &field.widget {
            Widget::Checks(_) => {
                field.values = given.iter().map(|v| v.to_string()).collect();
                (!field.values.is_empty()).then(|| Value::from(field.values.clone()))
            }
            Widget::Lines => {
                field.values = given
                    .iter()
                    .flat_map(|v| v.lines())
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                (!field.values.is_empty()).then(|| Value::from(field.values.clone()))
            }
            widget => {
                let text = given.first().map(|v| v.trim()).unwrap_or_default();
                field.values = vec![text.to_string()];
                if text.is_empty() {
                    None
                } else {
                    Some(match widget {
                        Widget::Number { integer: true } => text
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::from(text)),
                        Widget::Number { integer: false } => text
                            .parse::<f64>()
                            .ok()
                            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                            .unwrap_or_else(|| Value::from(text)),
                        Widget::Yes => Value::Bool(text == "true"),
                        _ => Value::from(text),
                    })
                }
            }
        };
        if let Some(value) = value {
            insert(&mut form, &field.path, value);
        }
    }
    Value::Object(form)
}

fn insert(form: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            form.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let inner = form
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                insert(inner, rest, value);
            }
        }
    }
}

/// Put each problem on its field (a problem on `a.b` or inside it, `a.b[0]`); what names no
/// field of the form is given back (the whole form's, materials', a department's).
pub(crate) fn place(groups: &mut [Group], problems: &[FieldProblem]) -> Vec<FieldProblem> {
    let mut left = Vec::new();
    for problem in problems {
        let found = groups
            .iter_mut()
            .flat_map(|g| g.fields.iter_mut())
            .find(|f| {
                problem.field == f.path
                    || problem.field.starts_with(&format!("{}[", f.path))
                    || problem.field.starts_with(&format!("{}.", f.path))
            });
        match found {
            Some(field) => field.problems.push(problem.message.clone()),
            None => left.push(problem.clone()),
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Map<String, Value> {
        json!({
            "type": "object",
            "required": ["enterprise_name"],
            "properties": {
                "enterprise_name": {"type": "string", "title": "企业名称"},
                "registered_capital": {"type": "integer", "title": "注册资本（万元）"},
                "seal_types": {"type": "array", "title": "印章类型", "items": {"enum": ["法定名称章", "财务专用章"]}},
                "legal_representative": {"type": "object", "title": "法定代表人", "required": ["name"], "properties": {
                    "name": {"type": "string", "title": "姓名"},
                    "id_number": {"type": "string", "title": "公民身份号码"}
                }}
            }
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn a_schema_becomes_groups_and_a_posted_form_becomes_json() {
        let mut groups = groups(&schema());
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["基本信息", "法定代表人"]);
        assert!(
            groups[0]
                .fields
                .iter()
                .any(|f| f.path == "enterprise_name" && f.required)
        );
        let pairs: Vec<(String, String)> = [
            ("f.enterprise_name", "福州演示科技有限公司"),
            ("f.registered_capital", "100"),
            ("f.seal_types", "法定名称章"),
            ("f.seal_types", "财务专用章"),
            ("f.legal_representative.name", "李四"),
            ("f.legal_representative.id_number", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let form = fill(&mut groups, &pairs);
        assert_eq!(
            form,
            json!({"enterprise_name": "福州演示科技有限公司", "registered_capital": 100,
                   "seal_types": ["法定名称章", "财务专用章"], "legal_representative": {"name": "李四"}})
        );
        let left = place(
            &mut groups,
            &[
                FieldProblem::new(
                    "legal_representative.id_number",
                    "required",
                    "缺少公民身份号码",
                ),
                FieldProblem::new("materials.articles", "required", "缺少公司章程"),
            ],
        );
        let id_number = groups[1]
            .fields
            .iter()
            .find(|f| f.path == "legal_representative.id_number")
            .unwrap();
        assert_eq!(id_number.problems, ["缺少公民身份号码"]);
        assert_eq!(left.len(), 1);
    }
}
