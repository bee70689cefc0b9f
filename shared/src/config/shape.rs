//! Limits on the shape of a config document, checked before a tree is built.
//!
//! saphyr's loader builds its tree recursively (one stack frame per level), and
//! every later pass over the tree (conversion, paths, serde) costs at least the
//! depth per value. So the text is first read as a stream of parser events,
//! which saphyr produces with an explicit stack, and refused when it is too
//! big, too deep, holds too many values, or has aliases that would expand it
//! past those bounds ("billion laughs"). Only a document within every bound is
//! handed to the loader.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use super::diagnostic::Diagnostic;

/// The largest config file, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// The deepest nesting of lists and mappings (the top-level mapping is level 1).
/// A step's request is at level 6 (`workflows.<name>.steps[i].request.json`),
/// which leaves a JSON body more than 50 levels.
pub const MAX_DEPTH: usize = 64;
/// The most values (keys, scalars, lists and mappings) in a config, with
/// aliases expanded.
pub const MAX_VALUES: usize = 50_000;
/// The most text (bytes of keys and scalars) in a config with aliases
/// expanded: aliases may not make a config bigger than [`MAX_BYTES`].
pub const MAX_EXPANDED_BYTES: usize = MAX_BYTES;

/// Values and text of a subtree, aliases expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    values: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.values = self.values.saturating_add(other.values);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Check `text` against every limit, in one pass over its parser events (no
/// recursion). A syntax error is reported as the loader would report it.
pub(crate) fn check(text: &str) -> Result<(), Diagnostic> {
    if text.len() > MAX_BYTES {
        return Err(Diagnostic {
            path: String::new(),
            line: None,
            message: format!(
                "the file is {} bytes; a config may be at most {MAX_BYTES} bytes (1 MiB)",
                text.len()
            ),
        });
    }
    let fail = |line: usize, message: String| Diagnostic {
        path: String::new(),
        line: Some(line),
        message,
    };
    // One frame per open list or mapping: its anchor and its size so far.
    let mut open: Vec<(usize, Size)> = Vec::new();
    let mut total = Size::default();
    let mut anchors: HashMap<usize, Size> = HashMap::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            fail(
                m.line(),
                format!("YAML syntax error at column {}: {}", m.col() + 1, e.info()),
            )
        })?;
        let line = span.start.line();
        // The size this event adds to its parent, and the anchor it defines.
        let (added, anchor, aliased) = match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(fail(
                        line,
                        format!(
                            "lists and mappings are nested more than {MAX_DEPTH} levels deep here; flatten the structure"
                        ),
                    ));
                }
                open.push((anchor, Size::default()));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, mut size)) = open.pop() else {
                    continue;
                };
                size.add(Size {
                    values: 1,
                    bytes: 0,
                });
                (size, anchor, false)
            }
            Event::Scalar(value, _, anchor, _) => (
                Size {
                    values: 1,
                    bytes: value.len(),
                },
                anchor,
                false,
            ),
            // An unknown anchor is the loader's to report.
            Event::Alias(id) => (anchors.get(&id).copied().unwrap_or_default(), 0, true),
            _ => continue,
        };
        if anchor > 0 {
            anchors.insert(anchor, added);
        }
        match open.last_mut() {
            Some((_, parent)) => parent.add(added),
            None => total.add(added),
        }
        // Scalars and closed collections are counted once, at the top; an
        // alias is checked on its own so the error names its line.
        let mut seen = total;
        for (_, s) in &open {
            seen.add(*s);
        }
        if seen.values > MAX_VALUES || seen.bytes > MAX_EXPANDED_BYTES {
            let what = if aliased {
                "with its aliases expanded, this config"
            } else {
                "this config"
            };
            return Err(fail(
                line,
                format!(
                    "{what} holds more than {MAX_VALUES} values or {MAX_EXPANDED_BYTES} bytes of text; split it up{}",
                    if aliased {
                        " or use fewer aliases (*name)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    Ok(())
}
