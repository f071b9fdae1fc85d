//! JSON for a value that serializes as one string with nothing to escape (a
//! `String`, a `&str`, a newtype or `Some` around one), written without
//! `serde_json`'s per-byte escape scan. Anything else is left to
//! `serde_json`.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The JSON text of `value` when it is one string that needs no escape:
/// the bytes `serde_json` would write, found with a scan that compiles to
/// vector instructions.
pub(crate) fn json_str<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    value.serialize(Probe { out: &mut out }).ok()?;
    Some(out)
}

/// Not a plain string.
#[derive(Debug)]
pub(crate) struct NotAString;

impl fmt::Display for NotAString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a string")
    }
}

impl std::error::Error for NotAString {}

impl ser::Error for NotAString {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        NotAString
    }
}

/// A serializer that accepts a string only, written into `out`.
struct Probe<'a> {
    out: &'a mut Vec<u8>,
}

/// Methods that refuse: every value that is not a string.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<(), NotAString> {
            Err(NotAString)
        })*
    };
}

impl ser::Serializer for Probe<'_> {
    type Ok = ();
    type Error = NotAString;
    type SerializeSeq = Impossible<(), NotAString>;
    type SerializeTuple = Impossible<(), NotAString>;
    type SerializeTupleStruct = Impossible<(), NotAString>;
    type SerializeTupleVariant = Impossible<(), NotAString>;
    type SerializeMap = Impossible<(), NotAString>;
    type SerializeStruct = Impossible<(), NotAString>;
    type SerializeStructVariant = Impossible<(), NotAString>;

    fn serialize_str(self, v: &str) -> Result<(), NotAString> {
        // No early exit: the scan compiles to vector instructions.
        let special = v.bytes().fold(false, |any, b| {
            any | (b == b'"') | (b == b'\\') | (b < 0x20)
        });
        if special {
            return Err(NotAString);
        }
        self.out.reserve_exact(v.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
        Ok(())
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    // `serde_json` writes `Some(v)` and a newtype as the value inside.
    fn serialize_some<V: Serialize + ?Sized>(self, v: &V) -> Result<(), NotAString> {
        v.serialize(self)
    }

    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &V,
    ) -> Result<(), NotAString> {
        v.serialize(self)
    }

    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &V,
    ) -> Result<(), NotAString> {
        Err(NotAString)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAString> {
        Err(NotAString)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAString> {
        Err(NotAString)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, NotAString> {
        Err(NotAString)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, NotAString> {
        Err(NotAString)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, NotAString> {
        Err(NotAString)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Id(String);

    #[derive(Serialize)]
    struct Point {
        x: u32,
    }

    #[derive(Serialize)]
    enum Kind {
        A,
    }

    fn same<T: Serialize + ?Sized>(value: &T) -> bool {
        let expected = serde_json::to_vec(value).unwrap();
        match json_str(value) {
            Some(ours) => ours == expected,
            None => true,
        }
    }

    #[test]
    fn plain_strings_are_written_as_serde_json_writes_them() {
        for s in ["", "abc", "h\u{e9}llo \u{1f600}", &"x".repeat(1000)] {
            assert_eq!(json_str(s), Some(serde_json::to_vec(s).unwrap()), "{s}");
            assert_eq!(
                json_str(&s.to_owned()),
                Some(serde_json::to_vec(s).unwrap())
            );
            assert_eq!(
                json_str(&Id(s.to_owned())),
                Some(serde_json::to_vec(s).unwrap())
            );
            assert_eq!(json_str(&Some(s)), Some(serde_json::to_vec(s).unwrap()));
        }
    }

    #[test]
    fn everything_else_is_left_to_serde_json() {
        for s in ["a\"b", "a\\b", "a\nb", "\u{1}", "\u{7f}"] {
            assert!(same(s), "{s:?}");
            let escapes = s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!(json_str(s).is_none(), escapes, "{s:?}");
        }
        assert!(json_str(&None::<String>).is_none());
        assert!(json_str(&1u32).is_none());
        assert!(json_str(&'c').is_none());
        assert!(json_str(&Point { x: 1 }).is_none());
        assert!(json_str(&Kind::A).is_none());
        assert!(json_str(&vec!["a"]).is_none());
        assert!(json_str(&serde_json::json!({"a": "b"})).is_none());
        // A JSON value that is a string is one.
        assert!(same(&serde_json::json!("plain")));
        assert!(json_str(&serde_json::json!("plain")).is_some());
    }
}
