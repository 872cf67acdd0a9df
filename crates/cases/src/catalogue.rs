//! The service catalogue: matters (事项) with their schemas, and the services a portal applies for.
//!
//! A matter's input schema comes from the config when it names one, else from its adapter's
//! `describe`. Schemas are compiled once; identifier formats (`resident-id`, `credit-code`,
//! `real-estate-unit`, `real-estate-certificate`) are checked with the national algorithms.

use crate::one_thing::{FormBuilder, InputMapping, schema_at};
use anyhow::Context;
use gateway_base::config::{Config, ServiceConfig, Source};
pub use gateway_base::model::FieldProblem;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The version serving each department, by department id: what the catalogue is built against
/// ([`gateway_plugins::adapters::Adapters::actives`], or a reload's plan).
pub type ActiveAdapters = BTreeMap<String, Arc<gateway_plugins::host::LoadedAdapter>>;

/// The version serving a lookup, among `serving`.
fn for_lookup<'a>(
    serving: &'a ActiveAdapters,
    name: &str,
) -> Option<&'a gateway_plugins::host::LoadedAdapter> {
    serving
        .values()
        .find(|a| a.description().lookups.iter().any(|l| l.name == name))
        .map(|a| &**a)
}

/// Whether a service is one matter or a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum ServiceKind {
    /// One matter.
    #[serde(rename = "single")]
    Single,
    /// A "one thing" service (一件事) across departments.
    #[serde(rename = "one-thing")]
    OneThing,
}

/// One matter of the catalogue.
#[derive(Debug)]
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
    validator: jsonschema::Validator,
}

/// A service a portal applies for: a single matter, or a "one thing" graph of matters.
#[derive(Debug)]
pub struct Service {
    /// Service code.
    pub code: String,
    /// Name.
    pub name: String,
    /// One matter, or a bundle across departments.
    pub kind: ServiceKind,
    /// What the applicant gets done.
    pub description: String,
    /// The steps, each a matter.
    pub steps: Vec<ServiceStep>,
    /// Lookups run at pre-review, whose answers fill matter inputs.
    pub lookups: Vec<ServiceLookup>,
    /// Cross-field rules.
    pub rules: Vec<gateway_base::config::RuleConfig>,
    /// The one form (JSON Schema).
    pub form: Value,
    validator: jsonschema::Validator,
}

/// One step of a service.
#[derive(Debug, Clone)]
pub struct ServiceStep {
    /// Step id within the service.
    pub id: String,
    /// Matter code.
    pub matter: String,
    /// Steps whose approval this one waits for.
    pub after: Vec<String>,
    /// How the matter's input is made; `None` for a single-matter service (the form is the input).
    pub input: Option<InputMapping>,
}

/// A lookup a service runs before submission.
#[derive(Debug, Clone)]
pub struct ServiceLookup {
    /// Id within the service.
    pub id: String,
    /// Lookup name.
    pub lookup: String,
    /// Query field → source.
    pub query: InputMapping,
}

impl Service {
    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&ServiceStep> {
        self.steps.iter().find(|s| s.id == id)
    }
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
    /// Build the catalogue from the config and what the serving adapter versions describe.
    pub fn build(config: &Config, adapters: &ActiveAdapters) -> anyhow::Result<Self> {
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
        let mut services: BTreeMap<String, Service> = BTreeMap::new();
        for m in matters.values() {
            let service = Service {
                code: m.code.clone(),
                name: m.name.clone(),
                kind: ServiceKind::Single,
                description: String::new(),
                steps: vec![ServiceStep {
                    id: m.code.clone(),
                    matter: m.code.clone(),
                    after: Vec::new(),
                    input: None,
                }],
                lookups: Vec::new(),
                rules: Vec::new(),
                form: m.schema.clone(),
                validator: compile(&m.schema)?,
            };
            services.insert(m.code.clone(), service);
        }
        for (code, sc) in &config.services {
            let service = one_thing(code, sc, &matters, adapters)
                .with_context(|| format!("services.\"{code}\""))?;
            services.insert(code.clone(), service);
        }
        Ok(Catalogue { matters, services })
    }

    /// Every schema problem of a service's form.
    pub fn check_form(&self, service: &Service, form: &Value) -> Vec<FieldProblem> {
        let _ = self;
        service
            .validator
            .iter_errors(form)
            .map(|e| problem_from(&e))
            .collect()
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

fn mapping(entries: &BTreeMap<String, String>) -> anyhow::Result<InputMapping> {
    entries
        .iter()
        .map(|(target, source)| {
            let path = target.split('.').map(str::to_string).collect();
            Ok((path, Source::parse(source).map_err(anyhow::Error::msg)?))
        })
        .collect()
}

/// Build a one-thing service: its steps, lookups, and its one form from the matters' schemas.
fn one_thing(
    code: &str,
    sc: &ServiceConfig,
    matters: &BTreeMap<String, Matter>,
    adapters: &ActiveAdapters,
) -> anyhow::Result<Service> {
    let mut form = FormBuilder::new(&sc.name, &sc.description);
    let mut steps = Vec::new();
    for step in &sc.steps {
        let matter = &matters[&step.matter];
        let input = mapping(&step.input)?;
        for (target, source) in &input {
            if let Source::Form(path) = source {
                let (schema, required) = schema_at(&matter.schema, target).with_context(|| {
                    let field = target.join(".");
                    format!(
                        "step `{}`: matter {} has no input field `{field}`",
                        step.id, matter.code
                    )
                })?;
                form.field(path, schema, required);
            }
        }
        steps.push(ServiceStep {
            id: step.id.clone(),
            matter: step.matter.clone(),
            after: step.after.clone(),
            input: Some(input),
        });
    }
    let mut lookups = Vec::new();
    for lookup in &sc.lookups {
        let name = &lookup.lookup;
        let adapter = for_lookup(adapters, name)
            .with_context(|| format!("lookup `{name}`: no adapter serves it"))?;
        let info = adapter
            .description()
            .lookups
            .iter()
            .find(|l| &l.name == name)
            .expect("for_lookup found it");
        let schema: Value = serde_json::from_str(&info.input_schema)
            .with_context(|| format!("lookup `{name}`: schema is not JSON"))?;
        let query = mapping(&lookup.query)?;
        for (target, source) in &query {
            if let Source::Form(path) = source {
                let (field, _) = schema_at(&schema, target).with_context(|| {
                    format!("lookup `{name}` has no query field `{}`", target.join("."))
                })?;
                // The lookup's answer replaces what the applicant would otherwise supply, so its
                // query fields are what the form must ask for.
                form.field(path, field, true);
            }
        }
        lookups.push(ServiceLookup {
            id: lookup.id.clone(),
            lookup: name.clone(),
            query,
        });
    }
    for (name, schema) in &sc.fields {
        let schema: Value = serde_json::to_value(schema)?;
        form.field(std::slice::from_ref(name), &schema, true);
    }
    for rule in &sc.rules {
        for side in [&rule.left, &rule.right] {
            if let Ok(Source::Form(path)) = Source::parse(side) {
                anyhow::ensure!(
                    form.has(&path[0]),
                    "rule on `{side}`: the form does not ask for `{}`",
                    path[0]
                );
            }
        }
    }
    let form = form.finish();
    let validator = compile(&form).context("the merged form does not compile")?;
    Ok(Service {
        code: code.to_string(),
        name: sc.name.clone(),
        kind: ServiceKind::OneThing,
        description: sc.description.clone(),
        steps,
        lookups,
        rules: sc.rules.clone(),
        form,
        validator,
    })
}

fn compile(
    schema: &Value,
) -> Result<jsonschema::Validator, Box<jsonschema::ValidationError<'static>>> {
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
        .map_err(Box::new)
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
        K::Type { .. } => FieldProblem::new(
            field,
            "type",
            gateway_base::redact::redact(&error.to_string()),
        ),
        K::Enum { .. } | K::Constant { .. } => FieldProblem::new(field, "enum", "不是允许的取值"),
        K::MinLength { .. } | K::MaxLength { .. } | K::Pattern { .. } => FieldProblem::new(
            field,
            "format",
            gateway_base::redact::redact(&error.to_string()),
        ),
        K::Minimum { .. }
        | K::Maximum { .. }
        | K::ExclusiveMinimum { .. }
        | K::ExclusiveMaximum { .. } => FieldProblem::new(
            field,
            "range",
            gateway_base::redact::redact(&error.to_string()),
        ),
        _ => FieldProblem::new(
            field,
            "invalid",
            gateway_base::redact::redact(&error.to_string()),
        ),
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
mod fuzz;

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
