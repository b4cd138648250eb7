//! [`Glob`]: path patterns by segment — `*` one segment, `**` any number.

use std::fmt;
use std::str::FromStr;

/// A path pattern matched segment by segment: a literal segment matches
/// itself, `*` matches exactly one segment, `**` matches any number of
/// segments (zero included), and a segment like `v*` matches segments that
/// start with `v`. Matching allocates nothing and takes at most a number of
/// steps proportional to the path's segments times the pattern's, however
/// many `**` it holds (repeated `**` count as one).
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
        let mut segments: Vec<Segment> = Vec::new();
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
            // `**/**` matches what `**` does.
            if !(seg == Segment::Any && segments.last() == Some(&Segment::Any)) {
                segments.push(seg);
            }
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
            Some(rest) => match_segments(&self.segments, Segments { rest: Some(rest) }),
            None => false,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Matches `path` against `pattern` as wildcard matching does with `*`:
/// each segment matcher takes one segment, and on a mismatch only the
/// latest `**` takes one more segment and the match resumes after it.
/// Backtracking to an earlier `**` never helps — whatever it would absorb,
/// the latest one can — so each `**` is retried at most once per segment of
/// the path: O(path × pattern) steps.
fn match_segments<'a, I>(pattern: &[Segment], mut path: I) -> bool
where
    I: Iterator<Item = &'a str> + Clone,
{
    let mut at = 0;
    // The pattern index after the latest `**`, and the path where that
    // `**` ends so far.
    let mut star: Option<(usize, I)> = None;
    loop {
        if pattern.get(at) == Some(&Segment::Any) {
            at += 1;
            star = Some((at, path.clone()));
            continue;
        }
        let mut next = path.clone();
        let Some(segment) = next.next() else { break };
        if pattern.get(at).is_some_and(|s| segment_matches(s, segment)) {
            at += 1;
            path = next;
            continue;
        }
        // A mismatch: the latest `**` takes one more segment.
        let Some((resume, end)) = star.as_mut() else {
            return false;
        };
        if end.next().is_none() {
            return false;
        }
        at = *resume;
        path = end.clone();
    }
    pattern[at..].iter().all(|s| *s == Segment::Any)
}

/// The segments of a path after its leading `/`, as `str::split('/')`
/// gives them; copied for nothing where the matcher backtracks (a `Split`
/// searches with `memchr`, which for segments a few bytes long costs more
/// than it saves).
#[derive(Clone, Copy)]
struct Segments<'a> {
    /// What is left to split; `None` once the last segment is out.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
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

    /// The plain matcher: recursive, retrying every `**` at every position
    /// (exponential in the number of `**`); the reference the fast one is
    /// checked against.
    fn naive<'a>(pattern: &[Segment], mut path: impl Iterator<Item = &'a str> + Clone) -> bool {
        let Some((first, rest)) = pattern.split_first() else {
            return path.next().is_none();
        };
        match first {
            Segment::Any => {
                let mut p = path;
                loop {
                    if naive(rest, p.clone()) {
                        return true;
                    }
                    if p.next().is_none() {
                        return false;
                    }
                }
            }
            seg => match path.next() {
                Some(s) if segment_matches(seg, s) => naive(rest, path),
                _ => false,
            },
        }
    }

    proptest::proptest! {
        #[test]
        fn matching_agrees_with_the_naive_matcher(
            pattern in proptest::collection::vec(
                proptest::prop_oneof![r"a", r"b", r"a\*", r"\*", r"\*\*"], 0..7),
            path in proptest::collection::vec(proptest::prop_oneof!["a", "b", "ab", "ba"], 0..9),
        ) {
            let pattern = format!("/{}", pattern.join("/"));
            let path = format!("/{}", path.join("/"));
            let glob = g(&pattern);
            let rest = path.strip_prefix('/').unwrap();
            proptest::prop_assert_eq!(
                glob.matches(&path),
                naive(&glob.segments, rest.split('/')),
                "{} against {}", pattern, path
            );
        }
    }

    #[test]
    fn repeated_double_stars_are_one() {
        assert_eq!(g("/**/**/a/**/**/**").segments.len(), 3);
        assert!(g("/**/**/a").matches("/x/y/a"));
    }

    #[test]
    fn many_double_stars_against_a_long_path_take_linear_steps() {
        // Four `**` against 4,000 segments that never end the match: the
        // naive matcher retries every `**` at every position (~10^13 steps,
        // hours); this one takes at most path × pattern.
        let path = "/a".repeat(4000);
        assert!(!g("/**/a/**/a/**/a/**/b").matches(&path));
        assert!(g("/**/a/**/a/**/a/**").matches(&path));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!("voice/*".parse::<Glob>().is_err());
        assert!("/a/b*c".parse::<Glob>().is_err());
        assert!("/a/**x".parse::<Glob>().is_err());
    }
}
