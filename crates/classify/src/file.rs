//! Rules from a configuration file (feature `serde`).

use serde::Deserialize;
use tower_pressure_core::{ConfigError, Priority};

use crate::Rules;
use crate::rules::{RulesBuilder, Spec};

/// Rules as written in TOML (or any serde format):
///
/// ```toml
/// default = "normal"
///
/// [[rule]]
/// path_prefix = "/voice/"
/// priority = "high"
///
/// [[rule]]
/// method = "POST"
/// glob = "/api/*/report"
/// priority = "low"
/// ```
///
/// Each rule names a priority and one or more matchers, all of which must
/// match: `path_prefix`, `path`, `glob`, `method`, `header` (present, or equal
/// to `equals`), `grpc_method`, `grpc_service`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesFile {
    #[serde(default)]
    default: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    priority: String,
    path_prefix: Option<String>,
    path: Option<String>,
    glob: Option<String>,
    method: Option<String>,
    header: Option<String>,
    equals: Option<String>,
    grpc_method: Option<String>,
    grpc_service: Option<String>,
}

fn priority(field: &'static str, what: String, text: &str) -> Result<Priority, ConfigError> {
    text.parse()
        .map_err(|e: tower_pressure_core::ParsePriorityError| {
            ConfigError::new(field, what, e.to_string())
        })
}

impl TryFrom<RulesFile> for Rules {
    type Error = ConfigError;

    fn try_from(file: RulesFile) -> Result<Self, Self::Error> {
        let mut b = RulesBuilder::default();
        if let Some(d) = &file.default {
            b = b.default_priority(priority("rules.default", format!("{d:?}"), d)?);
        }
        for (i, r) in file.rules.into_iter().enumerate() {
            let p = priority(
                "rules.priority",
                format!("rule {i}: {:?}", r.priority),
                &r.priority,
            )?;
            let mut all = Vec::new();
            all.extend(r.path_prefix.map(Spec::PathPrefix));
            all.extend(r.path.map(Spec::PathExact));
            all.extend(r.glob.map(Spec::PathGlob));
            all.extend(r.method.map(Spec::Method));
            match (r.header, r.equals) {
                (Some(h), Some(v)) => all.push(Spec::HeaderEquals(h, v)),
                (Some(h), None) => all.push(Spec::HeaderPresent(h)),
                (None, Some(v)) => {
                    return Err(ConfigError::new(
                        "rules.equals",
                        format!("rule {i}: {v:?}"),
                        "`equals` needs a `header`",
                    ));
                }
                (None, None) => {}
            }
            all.extend(r.grpc_method.map(Spec::GrpcMethod));
            all.extend(r.grpc_service.map(Spec::GrpcService));
            let spec = match all.len() {
                0 => {
                    return Err(ConfigError::new(
                        "rules",
                        format!("rule {i}"),
                        "a rule needs at least one matcher",
                    ));
                }
                1 => all.remove(0),
                _ => Spec::All(all),
            };
            b = b.push(spec, p);
        }
        b.build()
    }
}

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = RulesFile::deserialize(d)?;
        Rules::try_from(file).map_err(serde::de::Error::custom)
    }
}
