//! The service catalogue: matters (事项) with their schemas, and the services a portal applies for.
//!
//! A matter's input schema comes from the config when it names one, else from its adapter's
//! `describe`. Schemas are compiled once; identifier formats (`resident-id`, `credit-code`,
//! `real-estate-unit`, `real-estate-certificate`) are checked with the national algorithms.

use crate::adapters::Adapters;
use crate::config::Config;
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One problem with one field of an application: what pre-review reports, all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// Dotted path of the field (`legal_representative.id_number`), empty for the whole form.
    pub field: String,
    /// Stable machine code: `required`, `type`, `format`, `checksum`, `date`, `length`, `rule` ….
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

impl FieldProblem {
    /// A problem.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldProblem {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One matter of the catalogue.
#[derive(Debug, Serialize)]
pub struct Matter {
    /// Catalogue code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Department id.
    pub department: String,
    /// 事项类型 code.
    pub matter_type: String,
    /// 服务对象 code.
    pub service_object: String,
    /// 承诺时限 in working days.
    pub time_limit_days: u32,
    /// The input schema.
    pub schema: Value,
    #[serde(skip)]
    validator: jsonschema::Validator,
}

/// A service a portal applies for: its steps, one per matter.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// Service code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `single` (one matter) or `one-thing` (a bundle).
    pub kind: &'static str,
    /// The steps, each a matter.
    pub steps: Vec<ServiceStep>,
}

/// One step of a service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStep {
    /// Step id within the service.
    pub id: String,
    /// Matter code.
    pub matter: String,
}

/// The whole catalogue.
#[derive(Debug)]
pub struct Catalogue {
    /// Matters by code.
    pub matters: BTreeMap<String, Matter>,
    /// Services by code.
    pub services: BTreeMap<String, Service>,
}

impl Catalogue {
    /// Build the catalogue from the config and what the loaded adapters describe.
    pub fn build(config: &Config, adapters: &Adapters) -> anyhow::Result<Self> {
        let mut matters = BTreeMap::new();
        for (code, m) in &config.matters {
            let adapter = adapters.get(&m.department).with_context(|| {
                format!("matters.{code}: department {} has no adapter", m.department)
            })?;
            let described = adapter
                .description()
                .matters
                .iter()
                .find(|d| &d.code == code);
            let described = described.with_context(|| {
                format!(
                    "matters.{code}: the {} adapter does not serve this matter",
                    m.department
                )
            })?;
            let schema: Value = match &m.schema {
                Some(path) => {
                    let path = config.resolve(path);
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("matters.{code}.schema: {}", path.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("matters.{code}.schema: {}", path.display()))?
                }
                None => serde_json::from_str(&described.input_schema)
                    .with_context(|| format!("matters.{code}: the adapter's schema is not JSON"))?,
            };
            let validator = compile(&schema)
                .with_context(|| format!("matters.{code}: schema does not compile"))?;
            matters.insert(
                code.clone(),
                Matter {
                    code: code.clone(),
                    name: m.name.clone(),
                    department: m.department.clone(),
                    matter_type: m.matter_type.clone(),
                    service_object: m.service_object.clone(),
                    time_limit_days: m.time_limit_days,
                    schema,
                    validator,
                },
            );
        }
        let services = matters
            .values()
            .map(|m| {
                let service = Service {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    kind: "single",
                    steps: vec![ServiceStep {
                        id: m.code.clone(),
                        matter: m.code.clone(),
                    }],
                };
                (m.code.clone(), service)
            })
            .collect();
        Ok(Catalogue { matters, services })
    }

    /// The form of a service: one JSON Schema for everything the applicant fills in.
    pub fn form(&self, service: &Service) -> Value {
        // A single-matter service's form is its matter's schema.
        let step = &service.steps[0];
        self.matters[&step.matter].schema.clone()
    }

    /// Every schema problem of a matter's input.
    pub fn check_input(&self, matter: &Matter, input: &Value) -> Vec<FieldProblem> {
        let _ = self;
        matter
            .validator
            .iter_errors(input)
            .map(|e| problem_from(&e))
            .collect()
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        .should_validate_formats(true)
        .with_format("resident-id", |s: &str| sdk::ids::resident_id(s).is_ok())
        .with_format("credit-code", |s: &str| sdk::ids::credit_code(s).is_ok())
        .with_format("real-estate-unit", |s: &str| {
            sdk::ids::real_estate_unit(s).is_ok()
        })
        .with_format("real-estate-certificate", |s: &str| {
            sdk::ids::real_estate_certificate(s).is_ok()
        })
        .build(schema)
}

fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .replace('/', ".")
        .replace("~1", "/")
        .replace("~0", "~")
}

fn problem_from(error: &jsonschema::ValidationError<'_>) -> FieldProblem {
    use jsonschema::error::ValidationErrorKind as K;
    let field = dotted(error.instance_path.as_str());
    let join = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    match &error.kind {
        K::Required { property } => FieldProblem::new(
            join(property.as_str().unwrap_or_default()),
            "required",
            "必填项缺失",
        ),
        K::AdditionalProperties { unexpected } => FieldProblem::new(
            join(unexpected.first().map(String::as_str).unwrap_or_default()),
            "unknown_field",
            "表单中没有此项",
        ),
        K::Format { format } => {
            let value = error.instance.as_str().unwrap_or_default();
            let checked = match format.as_str() {
                "resident-id" => sdk::ids::resident_id(value).err(),
                "credit-code" => sdk::ids::credit_code(value).err(),
                "real-estate-unit" => sdk::ids::real_estate_unit(value).err(),
                "real-estate-certificate" => sdk::ids::real_estate_certificate(value).err(),
                _ => None,
            };
            match checked {
                Some(p) => FieldProblem::new(field, p.code, p.message),
                None => FieldProblem::new(field, "format", format!("不符合格式 {format}")),
            }
        }
        K::Type { .. } => {
            FieldProblem::new(field, "type", crate::redact::redact(&error.to_string()))
        }
        K::Enum { .. } | K::Constant { .. } => FieldProblem::new(field, "enum", "不是允许的取值"),
        K::MinLength { .. } | K::MaxLength { .. } | K::Pattern { .. } => {
            FieldProblem::new(field, "format", crate::redact::redact(&error.to_string()))
        }
        K::Minimum { .. }
        | K::Maximum { .. }
        | K::ExclusiveMinimum { .. }
        | K::ExclusiveMaximum { .. } => {
            FieldProblem::new(field, "range", crate::redact::redact(&error.to_string()))
        }
        _ => FieldProblem::new(field, "invalid", crate::redact::redact(&error.to_string())),
    }
}

/// Merge problem lists, keeping the first of any (field, code) pair: the schema and an adapter
/// often find the same bad checksum, and the applicant should read it once.
pub fn merge_problems(lists: impl IntoIterator<Item = Vec<FieldProblem>>) -> Vec<FieldProblem> {
    let mut seen = std::collections::HashSet::new();
    lists
        .into_iter()
        .flatten()
        .filter(|p| seen.insert((p.field.clone(), p.code.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matter(schema: Value) -> Matter {
        Matter {
            code: "m".into(),
            name: "m".into(),
            department: "d".into(),
            matter_type: "01".into(),
            service_object: "1".into(),
            time_limit_days: 1,
            validator: compile(&schema).unwrap(),
            schema,
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field_and_reason() {
        let m = matter(json!({
            "type": "object",
            "required": ["name", "person"],
            "properties": {
                "name": {"type": "string"},
                "code": {"type": "string", "format": "credit-code"},
                "person": {"type": "object", "required": ["id_number"], "properties": {
                    "id_number": {"type": "string", "format": "resident-id"}}},
                "price": {"type": "number", "exclusiveMinimum": 0}
            }
        }));
        let catalogue = Catalogue {
            matters: BTreeMap::new(),
            services: BTreeMap::new(),
        };
        let problems = catalogue.check_input(&m, &json!({"code": "91110000600037341M", "person": {"id_number": "110105194912310021"}, "price": -1}));
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect();
        assert!(got.contains(&("name", "required")), "{got:?}");
        assert!(got.contains(&("code", "checksum")), "{got:?}");
        assert!(got.contains(&("person.id_number", "checksum")), "{got:?}");
        assert!(got.contains(&("price", "range")), "{got:?}");
        assert!(
            problems
                .iter()
                .all(|p| !p.message.contains("110105194912310021")),
            "identity numbers never echo back"
        );
    }

    #[test]
    fn duplicates_from_schema_and_adapter_are_reported_once() {
        let a = vec![FieldProblem::new("x", "checksum", "a")];
        let b = vec![
            FieldProblem::new("x", "checksum", "b"),
            FieldProblem::new("y", "rule", "c"),
        ];
        assert_eq!(merge_problems([a, b]).len(), 2);
    }
}
