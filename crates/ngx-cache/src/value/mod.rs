//! Values as they are stored: codecs, the metadata envelope, encoding and
//! judging whole entries, [`Shared`] values, and [`inspect`] for operator
//! tools (a stored value of unknown type, decoded). Pure: nothing here does I/O.

pub mod codec;
pub(crate) mod entry;
pub(crate) mod envelope;
pub mod inspect;
pub(crate) mod probe;
pub mod shared;

pub use codec::Codec;
pub use shared::Shared;

/// What a cached value must be able to do.
pub trait Cacheable:
    serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
}

impl<T> Cacheable for T where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
}
