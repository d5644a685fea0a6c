//! The pure core: findings from the inventory and from what the edge serves, the pass's rules
//! over its memory, the alert lifecycle, the rotation plan. No I/O, no clock: `now` is a
//! parameter.

pub mod alerts;
pub mod budget;
pub mod dns;
pub mod edge;
pub mod evaluate;
pub mod judgement;
pub mod pass;
pub mod rotation;
