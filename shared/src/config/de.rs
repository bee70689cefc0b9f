//! A serde `Deserializer` over the YAML tree that knows where it is.
//!
//! Every error carries the path and line of the value it concerns. Unknown keys
//! of a struct are all reported (with a did-you-mean from the struct's field
//! names) and skipped, so the rest of the struct is still checked. Messages
//! speak YAML ("a mapping", "a whole number"), not Rust.

use std::cell::RefCell;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};

use super::de_error::{DeError, unexpected, unknown_key};
use super::diagnostic::{Diagnostic, Path, closest};
use super::yaml::{Entry, Kind, Node, Value};

/// Deserialize `T` from `node` at `path`; problems go to `out`. The value is
/// returned whenever one could be built, also after errors (for further checks).
///
/// serde stops at the first bad value, so to find the next one the entry holding
/// the bad value is set aside and the rest read again, until nothing is left to
/// find. A required key that is missing only because it was set aside, or that
/// an unknown key already explains ("did you mean"), is not reported again.
pub(crate) fn from_node<T: DeserializeOwned>(
    node: &Node,
    path: &Path,
    line: usize,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    const MAX_ROUNDS: usize = 32;
    let mut node = std::borrow::Cow::Borrowed(node);
    // Paths set aside, and paths an unknown key suggested (typo → missing key).
    let mut explained: Vec<Path> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let unknown = RefCell::new(Vec::new());
        let result = T::deserialize(De {
            node: &node,
            path: path.clone(),
            line,
            unknown: &unknown,
        });
        for u in unknown.into_inner() {
            explained.extend(u.suggested);
            out.push(u.diagnostic);
        }
        let e = match result {
            Ok(v) => return Some(v),
            Err(e) => e.locate(&node, path, line),
        };
        let (at, at_line) = e.at.unwrap_or_else(|| (path.clone(), line));
        if let (Some(s), Some(parent)) = (e.suggestion, at.parent()) {
            explained.push(parent.key(s));
        }
        if !e.missing.is_some_and(|m| explained.contains(&at.key(m))) {
            out.push(Diagnostic {
                path: at.to_string(),
                line: Some(at_line),
                message: e.message,
            });
        }
        // Set aside the entry that failed (for a missing key: the mapping that misses it).
        let target = at.nearest_entry();
        match target.below(path) {
            Some(rel) if !rel.is_empty() && node.to_mut().remove(rel) => explained.push(target),
            _ => return None,
        }
    }
    None
}

/// An unknown key, reported while reading goes on.
struct Unknown {
    diagnostic: Diagnostic,
    /// The key it is probably a typo of, at its full path.
    suggested: Option<Path>,
}

fn unexpected_node(node: &Node) -> Unexpected<'_> {
    match &node.value {
        Value::Null => Unexpected::Unit,
        Value::Scalar(s) => match s.kind {
            Kind::Str => Unexpected::Str(&s.text),
            Kind::Bool(b) => Unexpected::Bool(b),
            Kind::Int(i) => Unexpected::Signed(i),
            Kind::Float(f) => Unexpected::Float(f),
        },
        Value::Seq(_) => Unexpected::Seq,
        Value::Map(_) => Unexpected::Map,
    }
}

struct De<'a> {
    node: &'a Node,
    path: Path,
    line: usize,
    unknown: &'a RefCell<Vec<Unknown>>,
}

impl<'a> De<'a> {
    fn seq(&self, items: &'a [Node]) -> Seq<'a> {
        Seq {
            items: items.iter().enumerate(),
            path: self.path.clone(),
            unknown: self.unknown,
        }
    }

    fn map(&self, entries: Vec<&'a Entry>) -> Map<'a> {
        Map {
            entries: entries.into_iter(),
            pending: None,
            path: self.path.clone(),
            unknown: self.unknown,
        }
    }

    fn wrong<T>(&self, exp: &dyn Expected) -> Result<T, DeError> {
        Err(de::Error::invalid_type(unexpected_node(self.node), exp))
    }

    fn done<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.locate(self.node, &self.path, self.line))
    }
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null => v.visit_unit(),
            Value::Scalar(s) => match s.kind {
                Kind::Str => v.visit_str(&s.text),
                Kind::Bool(b) => v.visit_bool(b),
                Kind::Int(i) => v.visit_i64(i),
                Kind::Float(f) => v.visit_f64(f),
            },
            Value::Seq(items) => v.visit_seq(self.seq(items)),
            Value::Map(entries) => v.visit_map(self.map(entries.iter().collect())),
        };
        self.done(r)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let (node, path, line) = (self.node, self.path.clone(), self.line);
        let r = match node.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        };
        r.map_err(|e| e.locate(node, &path, line))
    }

    /// Strings accept any scalar as written: `X-Version: 2.10` gives "2.10".
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Scalar(s) => v.visit_str(&s.text),
            _ => self.wrong(&v),
        };
        self.done(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match self.node.value {
            Value::Null => v.visit_unit(),
            _ => self.wrong(&v),
        };
        self.done(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Seq(items) => v.visit_seq(self.seq(items)),
            _ => self.wrong(&v),
        };
        self.done(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Map(entries) => v.visit_map(self.map(entries.iter().collect())),
            _ => self.wrong(&v),
        };
        self.done(r)
    }

    /// Unknown keys are reported here, all of them, and left out.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let Value::Map(entries) = &self.node.value else {
            let r = self.wrong(&v);
            return self.done(r);
        };
        let mut known = Vec::with_capacity(entries.len());
        for e in entries {
            if fields.contains(&e.key.as_str()) {
                known.push(e);
            } else {
                self.unknown.borrow_mut().push(Unknown {
                    diagnostic: Diagnostic {
                        path: self.path.key(&e.key).to_string(),
                        line: Some(e.line),
                        message: unknown_key(&e.key, fields),
                    },
                    suggested: closest(&e.key, fields.iter().copied()).map(|s| self.path.key(s)),
                });
            }
        }
        let r = v.visit_map(self.map(known));
        self.done(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Scalar(s) => v.visit_enum(s.text.as_str().into_deserializer()),
            _ => Err(DeError::new(format!(
                "expected one of: {}; found {}",
                variants.join(", "),
                unexpected(unexpected_node(self.node))
            ))),
        };
        self.done(r)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
    }
}

struct Seq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: Path,
    unknown: &'a RefCell<Vec<Unknown>>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.index(i);
        let de = De {
            node,
            path: path.clone(),
            line: node.line,
            unknown: self.unknown,
        };
        seed.deserialize(de)
            .map(Some)
            .map_err(|e| e.locate(node, &path, node.line))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    entries: std::vec::IntoIter<&'a Entry>,
    pending: Option<&'a Entry>,
    path: Path,
    unknown: &'a RefCell<Vec<Unknown>>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(e) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(e);
        let key: de::value::StrDeserializer<'_, DeError> = e.key.as_str().into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|err| err.locate(&e.value, &self.path.key(&e.key), e.line))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let Some(e) = self.pending.take() else {
            return Err(DeError::new("a value was read before its key".into()));
        };
        let path = self.path.key(&e.key);
        let de = De {
            node: &e.value,
            path: path.clone(),
            line: e.line,
            unknown: self.unknown,
        };
        seed.deserialize(de)
            .map_err(|err| err.locate(&e.value, &path, e.line))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
