//! Actions that change the account: the rotation executor and the locks that serialise it.
//! Decides nothing itself: what to do comes from [`crate::core`].

pub mod lock;
pub mod replaced;
pub mod rotation;
