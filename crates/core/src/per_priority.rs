//! [`PerPriority`]: one value for each priority class.

use std::ops::{Index, IndexMut};
use std::{array, iter, slice};

use crate::Priority;

/// One value for each [`Priority`] class, indexed by priority.
///
/// A `[T; 5]` whose order (`Bulk` first) the type keeps, so that a table of
/// timeouts, weights or counts cannot be read for the wrong class.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{PerPriority, Priority};
///
/// // From a function of the priority…
/// let mut timeouts = PerPriority::from_fn(|p| {
///     if p >= Priority::High { Duration::from_millis(500) } else { Duration::from_secs(2) }
/// });
/// timeouts[Priority::Bulk] = Duration::from_secs(10);
/// assert_eq!(timeouts[Priority::Critical], Duration::from_millis(500));
///
/// // …or from an array, `Bulk` first.
/// let weights = PerPriority::from([1.0, 2.0, 4.0, 8.0, 16.0]);
/// assert_eq!(weights[Priority::Normal], 4.0);
/// assert_eq!(weights.values().sum::<f64>(), 31.0);
///
/// for (priority, weight) in &weights {
///     println!("{priority}: {weight}");
/// }
/// let doubled = weights.map(|w| w * 2.0);
/// assert_eq!(doubled[Priority::Critical], 32.0);
/// assert_eq!(<[f64; 5]>::from(doubled), [2.0, 4.0, 8.0, 16.0, 32.0]);
/// ```
///
/// # Serde
///
/// With the `serde` feature it is a map keyed by priority name, written
/// `Bulk` first:
///
/// ```toml
/// weights = { bulk = 1.0, low = 2.0, normal = 4.0, high = 8.0, critical = 16.0 }
/// ```
///
/// Keys are read as [`Priority`] parses them (names in any case, or the
/// digits `0`–`4`). All five are required, and a repeated one is an error:
/// the zero of most tables (a timeout, a weight) is not a sane value for a
/// class someone forgot, and the right default depends on the table, not on
/// `T`. A configuration that overrides only some classes reads its own
/// optional fields and applies them through its builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PerPriority<T>([T; 5]);

impl<T> PerPriority<T> {
    /// The value of each priority is `f(priority)`, called `Bulk` first.
    #[must_use]
    pub fn from_fn(f: impl FnMut(Priority) -> T) -> PerPriority<T> {
        PerPriority(Priority::ALL.map(f))
    }

    /// From an array indexed by [`Priority::index`] (`Bulk` first); the
    /// `const` form of `From<[T; 5]>`.
    #[must_use]
    pub const fn from_array(values: [T; 5]) -> PerPriority<T> {
        PerPriority(values)
    }

    /// Applies `f` to every value, `Bulk` first.
    #[must_use]
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerPriority<U> {
        PerPriority(self.0.map(f))
    }

    /// Each priority with its value, `Bulk` first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Priority, &T)> + ExactSizeIterator {
        self.into_iter()
    }

    /// Each priority with its value, mutably, `Bulk` first.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (Priority, &mut T)> + ExactSizeIterator {
        self.into_iter()
    }

    /// The values alone, `Bulk` first.
    pub fn values(&self) -> slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T> Index<Priority> for PerPriority<T> {
    type Output = T;

    #[inline]
    fn index(&self, priority: Priority) -> &T {
        &self.0[priority.index()]
    }
}

impl<T> IndexMut<Priority> for PerPriority<T> {
    #[inline]
    fn index_mut(&mut self, priority: Priority) -> &mut T {
        &mut self.0[priority.index()]
    }
}

impl<T> From<[T; 5]> for PerPriority<T> {
    /// From an array indexed by [`Priority::index`] (`Bulk` first).
    fn from(values: [T; 5]) -> Self {
        PerPriority(values)
    }
}

impl<T> From<PerPriority<T>> for [T; 5] {
    /// The values as an array, `Bulk` first.
    fn from(values: PerPriority<T>) -> Self {
        values.0
    }
}

impl<T> IntoIterator for PerPriority<T> {
    type Item = (Priority, T);
    type IntoIter = iter::Zip<array::IntoIter<Priority, 5>, array::IntoIter<T, 5>>;

    fn into_iter(self) -> Self::IntoIter {
        Priority::ALL.into_iter().zip(self.0)
    }
}

impl<'a, T> IntoIterator for &'a PerPriority<T> {
    type Item = (Priority, &'a T);
    type IntoIter = iter::Zip<array::IntoIter<Priority, 5>, slice::Iter<'a, T>>;

    fn into_iter(self) -> Self::IntoIter {
        Priority::ALL.into_iter().zip(self.0.iter())
    }
}

impl<'a, T> IntoIterator for &'a mut PerPriority<T> {
    type Item = (Priority, &'a mut T);
    type IntoIter = iter::Zip<array::IntoIter<Priority, 5>, slice::IterMut<'a, T>>;

    fn into_iter(self) -> Self::IntoIter {
        Priority::ALL.into_iter().zip(self.0.iter_mut())
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::PerPriority;
    use crate::Priority;

    impl<T: Serialize> Serialize for PerPriority<T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(Priority::COUNT))?;
            for (p, v) in self {
                map.serialize_entry(p.as_str(), v)?;
            }
            map.end()
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for PerPriority<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(PerPriorityVisitor(PhantomData))
        }
    }

    struct PerPriorityVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for PerPriorityVisitor<T> {
        type Value = PerPriority<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map with one value for each of bulk, low, normal, high and critical")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut values: [Option<T>; 5] = Default::default();
            while let Some(p) = map.next_key::<Priority>()? {
                let slot = &mut values[p.index()];
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(p.as_str()));
                }
                *slot = Some(map.next_value()?);
            }
            match values {
                [Some(b), Some(l), Some(n), Some(h), Some(c)] => Ok(PerPriority([b, l, n, h, c])),
                values => {
                    let missing = Priority::ALL
                        .into_iter()
                        .find(|p| values[p.index()].is_none())
                        .unwrap_or_default();
                    Err(de::Error::missing_field(missing.as_str()))
                }
            }
        }
    }
}
