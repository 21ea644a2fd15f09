//! Pure types and rules of Ironcase. No IO, no async: everything here is a value
//! that, once constructed, is valid ("parse, don't validate").
#![forbid(unsafe_code)]

pub mod alert;
pub mod audit;
pub mod compliance;
pub mod evidence;
pub mod id;
pub mod incident;
pub mod ioc;
pub mod net;
pub mod plan;
pub mod privacy;
pub mod query;
pub mod retention;
pub mod role;
pub mod timestamp;
pub mod validate;

pub use alert::AlertStatus;
pub use evidence::{CustodyAction, EvidenceKind};
pub use id::*;
pub use incident::*;
pub use role::*;
pub use timestamp::Timestamp;
pub use validate::{FieldError, ValidationErrors};
