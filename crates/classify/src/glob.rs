//! [`Glob`]: path patterns by segment — `*` one segment, `**` any number.

use std::fmt;
use std::str::FromStr;

/// A path pattern matched segment by segment: a literal segment matches
/// itself, `*` matches exactly one segment, `**` matches any number of
/// segments (zero included), and a segment like `v*` matches segments that
/// start with `v`. Matching allocates nothing.
///
/// ```
/// use tower_pressure_classify::Glob;
///
/// let g: Glob = "/api/*/report".parse().unwrap();
/// assert!(g.matches("/api/v2/report"));
/// assert!(!g.matches("/api/v2/x/report"));
/// let g: Glob = "/voice/**".parse().unwrap();
/// assert!(g.matches("/voice/a/b"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Prefix(String),
    One,
    Any,
}

/// A pattern that is not a valid [`Glob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    pattern: String,
    problem: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path glob {:?}: {}", self.pattern, self.problem)
    }
}

impl std::error::Error for GlobError {}

impl FromStr for Glob {
    type Err = GlobError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        let err = |problem| GlobError {
            pattern: pattern.to_owned(),
            problem,
        };
        let rest = pattern
            .strip_prefix('/')
            .ok_or_else(|| err("must start with `/`"))?;
        let mut segments = Vec::new();
        for s in rest.split('/') {
            let seg = match s {
                "**" => Segment::Any,
                "*" => Segment::One,
                s if s.ends_with('*') && !s[..s.len() - 1].contains('*') => {
                    Segment::Prefix(s[..s.len() - 1].to_owned())
                }
                s if s.contains('*') => {
                    return Err(err("`*` may only stand alone or end a segment"));
                }
                s => Segment::Literal(s.to_owned()),
            };
            segments.push(seg);
        }
        Ok(Glob {
            source: pattern.to_owned(),
            segments,
        })
    }
}

impl Glob {
    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match path.strip_prefix('/') {
            Some(rest) => match_segments(&self.segments, rest.split('/')),
            None => false,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn match_segments<'a>(
    pattern: &[Segment],
    mut path: impl Iterator<Item = &'a str> + Clone,
) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return path.next().is_none();
    };
    match first {
        Segment::Any => {
            // Zero segments, or one more and try again. Patterns are short
            // and `**` is rare, so the backtracking stays small.
            let mut p = path;
            loop {
                if match_segments(rest, p.clone()) {
                    return true;
                }
                if p.next().is_none() {
                    return false;
                }
            }
        }
        seg => match path.next() {
            Some(s) if segment_matches(seg, s) => match_segments(rest, path),
            _ => false,
        },
    }
}

fn segment_matches(seg: &Segment, s: &str) -> bool {
    match seg {
        Segment::Literal(l) => l == s,
        Segment::Prefix(p) => s.starts_with(p.as_str()),
        Segment::One => true,
        Segment::Any => true,
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.source).finish()
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        p.parse().unwrap()
    }

    #[test]
    fn stars_match_one_segment_and_double_stars_any_number() {
        assert!(g("/voice/*").matches("/voice/transcribe"));
        assert!(!g("/voice/*").matches("/voice"));
        assert!(!g("/voice/*").matches("/voice/a/b"));
        assert!(g("/api/*/report").matches("/api/v1/report"));
        assert!(g("/a/**/z").matches("/a/z"));
        assert!(g("/a/**/z").matches("/a/b/c/z"));
        assert!(!g("/a/**/z").matches("/a/b/c"));
        assert!(g("/**").matches("/anything/at/all"));
        assert!(g("/api/v*/x").matches("/api/v2/x"));
        assert!(!g("/api/v*/x").matches("/api/w2/x"));
        assert!(!g("/health").matches("/healthcare"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!("voice/*".parse::<Glob>().is_err());
        assert!("/a/b*c".parse::<Glob>().is_err());
        assert!("/a/**x".parse::<Glob>().is_err());
    }
}
