//! Typed reading of providers' webhook JSON: a field of an unexpected JSON type is absent.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

/// `T` read from a JSON object only: serde would read a struct from an array too, by
/// position, and an array where an object belongs is no such object.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

/// A field's value when it has the type read, else whatever it holds (taken as absent), so
/// a report is never refused over a field it could do without.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Or<T> {
    Is(T),
    Other(IgnoredAny),
}

impl<T> Or<T> {
    fn ok(self) -> Option<T> {
        match self {
            Or::Is(value) => Some(value),
            Or::Other(_) => None,
        }
    }
}

/// A string field (`deserialize_with`, next to `#[serde(default)]` for when it is missing).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Or::deserialize(d)?.ok())
}

/// A string field whose presence counts even when it holds no string: `Some(None)`.
pub fn present_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    text(d).map(Some)
}

/// An object field.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Or::<Object<T>>::deserialize(d)?.ok().map(|Object(value)| value))
}

/// An array of objects: an element that is not an object is None, a field that is not an
/// array is empty.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Or::<Vec<Or<Object<T>>>>::deserialize(d)?.ok().unwrap_or_default();
    Ok(items.into_iter().map(|item| item.ok().map(|Object(value)| value)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Item {
        #[serde(deserialize_with = "text")]
        name: Option<String>,
        #[serde(deserialize_with = "objects")]
        items: Vec<Option<Item>>,
    }

    fn read(json: &str) -> Option<Item> {
        serde_json::from_str::<Object<Item>>(json).ok().map(|Object(item)| item)
    }

    #[test]
    fn fields_of_another_type_are_absent_and_arrays_are_not_objects() {
        let item = read(r#"{"name": "a", "items": [{"name": 5}, "x", ["b"], {"name": "c"}]}"#);
        let item = item.unwrap();
        assert_eq!(item.name.as_deref(), Some("a"));
        let names: Vec<_> = item.items.iter().map(|i| i.as_ref().map(|i| i.name.clone())).collect();
        assert_eq!(names, [Some(None), None, None, Some(Some("c".into()))]);
        assert!(read(r#"{"name": null, "items": {"name": "b"}}"#).unwrap().items.is_empty());
        assert!(read(r#"["a", []]"#).is_none(), "a struct is not read from an array");
        assert!(read("{").is_none());
    }
}
