//! Lowering support for `emit` and `print`: record ids per probe, the two hidden maps the
//! records need (the ring buffer and a per-CPU drop counter) and the manifest's schemas.
//!
//! A record is `u32 id` then the values at [`hir::record_layout`] offsets. The id names an
//! event type *and* the probe that sent it (the runtime prints the probe with each event), so
//! each (probe, checked event type) pair gets its own id, numbered in probe order.

use ppis_ir::{Map, MapId, MapType};
use ppis_lang::hir::{self, Conversion, EventId, FormatPiece, StmtKind};
use ppis_manifest as manifest;
use std::borrow::Cow;
use std::collections::HashMap;

/// Object name of the ring buffer. The `.` keeps it apart from every source map name.
pub const RING_BUFFER_NAME: &str = "ppis.events";
/// Object name of the per-CPU drop counter (one `u64` at index 0).
pub const DROP_COUNTER_NAME: &str = "ppis.drops";
/// Ring buffer size: a power-of-two multiple of the page size, as the kernel requires.
pub const RING_BUFFER_BYTES: u32 = 256 * 1024;

/// Indices in the module's maps of the drop counter and the ring buffer: right after the
/// source maps and the stack maps (`lower` appends them in this order).
pub fn hidden_map_ids(map_defs: &[hir::MapDef]) -> (MapId, MapId) {
    let drops = map_defs.len() + super::layout::stack_maps(map_defs).len();
    (drops, drops + 1)
}

/// The drop counter and the ring buffer, in the order of [`hidden_map_ids`].
pub fn hidden_maps() -> [Map; 2] {
    [
        Map { name: DROP_COUNTER_NAME.into(), kind: MapType::PerCpuArray, key_size: 4, value_size: 8, max_entries: 1 },
        Map {
            name: RING_BUFFER_NAME.into(),
            kind: MapType::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: RING_BUFFER_BYTES,
        },
    ]
}

/// Record ids handed out so far: id `n` is `ids[n]` = (probe index, event type).
#[derive(Default)]
pub struct RecordIds {
    ids: Vec<(usize, EventId)>,
    by_pair: HashMap<(usize, EventId), u32>,
}

impl RecordIds {
    /// `probe` (the `index`th) with each `emit`'s event type replaced by its record id; the
    /// probe itself when it sends nothing.
    pub fn number<'p>(&mut self, index: usize, probe: &'p hir::Probe) -> Cow<'p, hir::Probe> {
        if !sends(&probe.body) {
            return Cow::Borrowed(probe);
        }
        let mut numbered = probe.clone();
        self.renumber(index, &mut numbered.body);
        Cow::Owned(numbered)
    }

    fn renumber(&mut self, index: usize, stmts: &mut [hir::Stmt]) {
        for stmt in stmts {
            match &mut stmt.kind {
                StmtKind::Emit { event, .. } => {
                    let next = self.ids.len() as u32;
                    let id = *self.by_pair.entry((index, *event)).or_insert(next);
                    if id == next {
                        self.ids.push((index, *event));
                    }
                    *event = id as usize;
                }
                StmtKind::If { then, otherwise, .. } | StmtKind::IfLet { then, otherwise, .. } => {
                    self.renumber(index, then);
                    self.renumber(index, otherwise);
                }
                StmtKind::For { body, .. } => self.renumber(index, body),
                _ => {}
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The manifest's description of every record id handed out; `program(i)` names probe `i`.
    pub fn manifest(&self, events: &[hir::EventDef], program: impl Fn(usize) -> String) -> manifest::EventsInfo {
        let types = self
            .ids
            .iter()
            .enumerate()
            .map(|(id, &(probe, event))| event_type(id as u32, &events[event], program(probe)))
            .collect();
        manifest::EventsInfo { ring_buffer: RING_BUFFER_NAME.into(), drop_counter: DROP_COUNTER_NAME.into(), types }
    }
}

fn sends(stmts: &[hir::Stmt]) -> bool {
    stmts.iter().any(|stmt| match &stmt.kind {
        StmtKind::Emit { .. } => true,
        StmtKind::If { then, otherwise, .. } | StmtKind::IfLet { then, otherwise, .. } => {
            sends(then) || sends(otherwise)
        }
        StmtKind::For { body, .. } => sends(body),
        _ => false,
    })
}

/// The schema of record `id`, an event of type `def` sent by `program`.
pub fn event_type(id: u32, def: &hir::EventDef, program: String) -> manifest::EventType {
    let fields = def
        .fields
        .iter()
        .zip(def.field_offsets())
        .map(|(field, offset)| manifest::EventField {
            name: field.name.clone(),
            offset,
            ty: super::layout::scalar(field.ty),
        })
        .collect();
    let format = def.format.as_ref().map(|format| {
        format
            .pieces
            .iter()
            .map(|piece| match piece {
                FormatPiece::Text(text) => manifest::FormatPiece::Text { text: text.clone() },
                FormatPiece::Conversion(conversion) => manifest::FormatPiece::Conversion {
                    conversion: match conversion {
                        Conversion::Signed => 'd',
                        Conversion::Unsigned => 'u',
                        Conversion::Hex => 'x',
                        Conversion::Str => 's',
                    },
                },
            })
            .collect()
    });
    manifest::EventType { id, name: def.name.clone(), program, size: def.record_size(), fields, format }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppis_lang::hir::{EventDef, EventField, PrintFormat};
    use ppis_lang::{Span, Ty};

    fn def(fields: &[(&str, Ty)], format: Option<PrintFormat>) -> EventDef {
        EventDef {
            name: "e".into(),
            span: Span::default(),
            fields: fields.iter().map(|(name, ty)| EventField { name: name.to_string(), ty: *ty }).collect(),
            format,
        }
    }

    #[test]
    fn record_fields_sit_at_natural_alignment_and_strings_on_words() {
        let event = def(&[("a", Ty::U8), ("b", Ty::U64), ("s", Ty::Str { len: 5 }), ("ok", Ty::Bool)], None);
        let schema = event_type(3, &event, "probe1".into());
        let offsets: Vec<u32> = schema.fields.iter().map(|f| f.offset).collect();
        // id 0..4, a at 4, b at 8, s at 16 (a word), ok right after it at 21; 22 rounds up to 24.
        assert_eq!(offsets, [4, 8, 16, 21]);
        assert_eq!(schema.size, 24);
        assert_eq!((schema.id, schema.program.as_str(), schema.format.is_none()), (3, "probe1", true));
        assert_eq!(schema.fields[2].ty, manifest::ScalarType::Str { len: 5 });
        // Only the header: one word.
        assert_eq!(event_type(0, &def(&[], None), "p".into()).size, 8);
    }

    #[test]
    fn print_formats_become_text_and_conversion_pieces() {
        let format = PrintFormat {
            pieces: vec![
                FormatPiece::Text("n=".into()),
                FormatPiece::Conversion(Conversion::Signed),
                FormatPiece::Conversion(Conversion::Hex),
                FormatPiece::Text("%\n".into()),
            ],
        };
        let schema = event_type(0, &def(&[("arg0", Ty::I64), ("arg1", Ty::U32)], Some(format)), "p".into());
        assert_eq!(
            schema.format.unwrap(),
            vec![
                manifest::FormatPiece::Text { text: "n=".into() },
                manifest::FormatPiece::Conversion { conversion: 'd' },
                manifest::FormatPiece::Conversion { conversion: 'x' },
                manifest::FormatPiece::Text { text: "%\n".into() },
            ]
        );
    }
}
