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
    /// Its materials (材料清单), see [`crate::materials`].
    pub materials: Vec<gateway_base::config::MaterialConfig>,
    /// How a supplement (补正) counts against its limit.
    pub supplement_clock: gateway_base::config::SupplementClock,
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
    /// A filled form for the API document: the catalogue's `example`, else the form schema's
    /// own first `examples`; it passes the form's schema.
    pub example: Option<Value>,
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
    /// A service's name; its code when the catalogue no longer has it (a case outlives the
    /// reload that removed its service).
    pub fn service_name(&self, code: &str) -> String {
        self.services
            .get(code)
            .map_or_else(|| code.to_string(), |s| s.name.clone())
    }

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
                    materials: m.materials.clone(),
                    supplement_clock: m.supplement_clock,
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
                example: None,
                validator: compile(&m.schema)?,
            };
            let configured = config.matters[&m.code].example.as_ref();
            let service = with_example(service, configured)
                .with_context(|| format!("matters.\"{}\".example", m.code))?;
            services.insert(m.code.clone(), service);
        }
        for (code, sc) in &config.services {
            let service = one_thing(code, sc, &matters, adapters)
                .with_context(|| format!("services.\"{code}\""))?;
            let service = with_example(service, sc.example.as_ref())
                .with_context(|| format!("services.\"{code}\".example"))?;
            services.insert(code.clone(), service);
        }
        Ok(Catalogue { matters, services })
    }

    /// The schema problems of a service's form: one per field (the first the schema finds).
    pub fn check_form(&self, service: &Service, form: &Value) -> Vec<FieldProblem> {
        let _ = self;
        first_per_field(
            service
                .validator
                .iter_errors(form)
                .map(|e| problem_from(&e)),
        )
    }
    /// The schema problems of a matter's input: one per field.
    pub fn check_input(&self, matter: &Matter, input: &Value) -> Vec<FieldProblem> {
        let _ = self;
        first_per_field(
            matter
                .validator
                .iter_errors(input)
                .map(|e| problem_from(&e)),
        )
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
        example: None,
        validator,
    })
}

/// A service with its example: the configured one, else the form schema's first `examples`.
/// An example that does not pass the form is refused: the document shows only forms that pass.
fn with_example(mut service: Service, configured: Option<&toml::Value>) -> anyhow::Result<Service> {
    let example = match configured {
        Some(example) => Some(serde_json::to_value(example)?),
        None => service.form["examples"].get(0).cloned(),
    };
    if let Some(example) = &example {
        let problems = first_per_field(
            service
                .validator
                .iter_errors(example)
                .map(|e| problem_from(&e)),
        );
        if let Some(p) = problems.first() {
            anyhow::bail!("does not pass the form: {}: {}", p.field, p.message);
        }
    }
    service.example = example;
    Ok(service)
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

/// One problem in the applicant's terms: its field, a stable code, a reason in Chinese. The
/// value is never repeated (it may be an identity number), nor the validator's own text.
fn problem_from(error: &jsonschema::ValidationError<'_>) -> FieldProblem {
    use jsonschema::error::ValidationErrorKind as K;
    let field = dotted(error.instance_path().as_str());
    let join = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let number = |limit: &Value| limit.to_string();
    match error.kind() {
        K::Required { property } => FieldProblem::new(
            join(property.as_str().unwrap_or_default()),
            "required",
            "必填项缺失",
        ),
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            FieldProblem::new(
                join(unexpected.first().map(String::as_str).unwrap_or_default()),
                "unknown_field",
                "表单中没有此项",
            )
        }
        K::Format { format } => {
            let value = error.instance().as_str().unwrap_or_default();
            let checked = match format.as_str() {
                "resident-id" => sdk::ids::resident_id(value).err(),
                "credit-code" => sdk::ids::credit_code(value).err(),
                "real-estate-unit" => sdk::ids::real_estate_unit(value).err(),
                "real-estate-certificate" => sdk::ids::real_estate_certificate(value).err(),
                _ => None,
            };
            match checked {
                Some(p) => FieldProblem::new(field, p.code, p.message),
                None => FieldProblem::new(field, "format", format_message(format)),
            }
        }
        K::Type { kind } => FieldProblem::new(field, "type", type_message(kind)),
        K::Enum { .. } | K::Constant { .. } => FieldProblem::new(field, "enum", "不是允许的取值"),
        K::MinLength { limit } => {
            FieldProblem::new(field, "length", format!("长度不能少于{limit}个字符"))
        }
        K::MaxLength { limit } => {
            FieldProblem::new(field, "length", format!("长度不能超过{limit}个字符"))
        }
        K::MinItems { limit } => FieldProblem::new(field, "length", format!("至少应填{limit}项")),
        K::MaxItems { limit } => FieldProblem::new(field, "length", format!("至多可填{limit}项")),
        K::Pattern { .. } => FieldProblem::new(field, "format", "格式不正确"),
        K::Minimum { limit } => {
            FieldProblem::new(field, "range", format!("不能小于{}", number(limit)))
        }
        K::Maximum { limit } => {
            FieldProblem::new(field, "range", format!("不能大于{}", number(limit)))
        }
        K::ExclusiveMinimum { limit } => {
            FieldProblem::new(field, "range", format!("应大于{}", number(limit)))
        }
        K::ExclusiveMaximum { limit } => {
            FieldProblem::new(field, "range", format!("应小于{}", number(limit)))
        }
        K::MultipleOf { multiple_of } => {
            FieldProblem::new(field, "range", format!("应为{multiple_of}的整数倍"))
        }
        _ => FieldProblem::new(field, "invalid", "填写内容不符合要求"),
    }
}

/// "Should be a number": what a field of the wrong type should be, in words.
fn type_message(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::JsonType;
    use jsonschema::error::TypeKind;
    // Each word with its place: types are named in this order, whatever order the validator
    // keeps a set of them in.
    let word = |t: JsonType| match t {
        JsonType::String => (0, "文本"),
        JsonType::Number => (1, "数字"),
        JsonType::Integer => (2, "整数"),
        JsonType::Boolean => (3, "布尔值（true 或 false）"),
        JsonType::Object => (4, "对象"),
        JsonType::Array => (5, "列表"),
        JsonType::Null => (6, "空值（null）"),
    };
    let mut words: Vec<(u8, &str)> = match kind {
        TypeKind::Single(t) => vec![word(*t)],
        TypeKind::Multiple(set) => set.iter().map(word).collect(),
    };
    words.sort_unstable();
    let words: Vec<&str> = words.into_iter().map(|(_, w)| w).collect();
    format!("应为{}", words.join("或"))
}

/// What a value of a standard format should look like.
fn format_message(format: &str) -> String {
    match format {
        "date" => "应为日期，如 2026-01-31".into(),
        "date-time" => "应为RFC 3339时间，如 2026-01-31T09:30:00+08:00".into(),
        "email" => "应为电子邮箱地址".into(),
        "uri" => "应为网址".into(),
        other => format!("不符合格式 {other}"),
    }
}

/// The first problem of each field, in order: the applicant reads one reason per field.
fn first_per_field(problems: impl IntoIterator<Item = FieldProblem>) -> Vec<FieldProblem> {
    let mut seen = std::collections::HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert(p.field.clone()))
        .collect()
}

/// Merge problem lists into one problem per field: the first found (the gateway's own schema
/// check comes first) gives the code, and every other source's different reason for the same
/// field is kept in its message after a `；` — a department's `validate` often knows something
/// the schema does not (the name is taken, the address is outside its district), and dropping
/// it would leave the applicant to find it out at the counter. The same reason twice (the
/// schema and an adapter both checking a checksum) is said once. A `required` beside another
/// problem adds nothing: either the field is missing (and that is the problem) or a source could
/// not read a value the first one already refused (`"lots"` as a capital is "应为数字", not also
/// "必填项").
pub fn merge_problems(lists: impl IntoIterator<Item = Vec<FieldProblem>>) -> Vec<FieldProblem> {
    let mut merged: Vec<FieldProblem> = Vec::new();
    for problem in lists.into_iter().flatten() {
        match merged.iter_mut().find(|p| p.field == problem.field) {
            None => merged.push(problem),
            Some(first) => {
                let required = first.code == "required" || problem.code == "required";
                if !required && !first.message.split('；').any(|m| m == problem.message) {
                    first.message = format!("{}；{}", first.message, problem.message);
                }
            }
        }
    }
    merged
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
            materials: Vec::new(),
            supplement_clock: Default::default(),
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
    fn every_schema_keyword_is_explained_in_chinese() {
        let m = matter(json!({
            "type": "object",
            "required": ["missing"],
            "additionalProperties": false,
            "properties": {
                "missing": {"type": "string"},
                "min": {"type": "integer", "minimum": 1},
                "max": {"type": "integer", "maximum": 9},
                "xmin": {"type": "number", "exclusiveMinimum": 0},
                "xmax": {"type": "number", "exclusiveMaximum": 1},
                "step": {"type": "integer", "multipleOf": 5},
                "short": {"type": "string", "minLength": 2},
                "long": {"type": "string", "maxLength": 2},
                "pattern": {"type": "string", "pattern": "^[0-9]+$"},
                "choice": {"enum": ["a", "b"]},
                "constant": {"const": "a"},
                "typed": {"type": "number"},
                "date": {"type": "string", "format": "date"},
                "few": {"type": "array", "minItems": 2},
                "many": {"type": "array", "maxItems": 1},
                "unique": {"type": "array", "uniqueItems": true},
                "one": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "not": {"not": {"type": "string"}}
            }
        }));
        let form = json!({
            "min": 0, "max": 10, "xmin": 0, "xmax": 1, "step": 7, "short": "a", "long": "abc",
            "pattern": "x1", "choice": "c", "constant": "b", "typed": "12", "date": "31/01/2026",
            "few": [1], "many": [1, 2], "unique": [1, 1], "one": 1.5, "not": "s", "extra": 1
        });
        let catalogue = Catalogue {
            matters: BTreeMap::new(),
            services: BTreeMap::new(),
        };
        let problems = catalogue.check_input(&m, &form);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for field in [
            "missing", "min", "max", "xmin", "xmax", "step", "short", "long", "pattern", "choice",
            "constant", "typed", "date", "few", "many", "unique", "one", "not", "extra",
        ] {
            assert!(
                fields.contains(&field),
                "no problem for {field}: {problems:?}"
            );
        }
        for p in &problems {
            let english = p.message.chars().any(|c| c.is_ascii_alphabetic());
            let chinese = p
                .message
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            assert!(chinese && !english, "{}: {}", p.field, p.message);
        }
        let by = |f: &str| {
            problems
                .iter()
                .find(|p| p.field == f)
                .unwrap()
                .message
                .clone()
        };
        assert_eq!(by("min"), "不能小于1");
        assert_eq!(by("long"), "长度不能超过2个字符");
    }

    #[test]
    fn one_problem_per_field_keeps_every_sources_reason() {
        let schema = vec![FieldProblem::new("x", "range", "不能小于1")];
        let adapter = vec![
            FieldProblem::new("x", "rule", "注册资本不得低于10万元"),
            FieldProblem::new("x", "range", "不能小于1"),
            FieldProblem::new("y", "rule", "地址不在本辖区"),
        ];
        let merged = merge_problems([schema, adapter]);
        assert_eq!(merged.len(), 2, "one problem per field: {merged:?}");
        assert_eq!(merged[0].code, "range", "the schema's code first");
        assert_eq!(
            merged[0].message, "不能小于1；注册资本不得低于10万元",
            "the adapter's reason kept beside the schema's, the same one said once"
        );
        assert_eq!(merged[1].message, "地址不在本辖区");
    }

    #[test]
    fn a_wrong_type_is_one_problem_in_chinese_without_the_value() {
        let m = matter(json!({
            "type": "object",
            "properties": {
                "registered_capital": {"type": "number", "exclusiveMinimum": 0},
                "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
                "flags": {"type": ["array", "null"]}
            }
        }));
        let catalogue = Catalogue {
            matters: BTreeMap::new(),
            services: BTreeMap::new(),
        };
        let problems = catalogue.check_input(
            &m,
            &json!({"registered_capital": "lots", "name": "1", "flags": 3}),
        );
        let mut got: Vec<(&str, &str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str(), p.message.as_str()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("flags", "type", "应为列表或空值（null）"),
                ("name", "length", "长度不能少于2个字符"),
                ("registered_capital", "type", "应为数字"),
            ]
        );
    }

    #[test]
    fn an_example_must_pass_its_form() {
        let service = |form: Value| Service {
            code: "s".into(),
            name: "s".into(),
            kind: ServiceKind::Single,
            description: String::new(),
            steps: Vec::new(),
            lookups: Vec::new(),
            rules: Vec::new(),
            example: None,
            validator: compile(&form).unwrap(),
            form,
        };
        let form = json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}},
                          "examples": [{"n": 2}]});
        let good: toml::Value = toml::from_str("n = 1").unwrap();
        let bad: toml::Value = toml::from_str("n = \"one\"").unwrap();
        assert_eq!(
            with_example(service(form.clone()), Some(&good))
                .unwrap()
                .example,
            Some(json!({"n": 1}))
        );
        assert_eq!(
            with_example(service(form.clone()), None).unwrap().example,
            Some(json!({"n": 2})),
            "else the schema's own"
        );
        let refused = with_example(service(form), Some(&bad)).unwrap_err();
        assert!(refused.to_string().contains("n: 应为数字"), "{refused}");
    }
}
