//! Small helpers shared by both fakes, one job a file: ready responses, what a request
//! says, ids, clocks, base64, JWT-shaped tokens and the tables of those issued, request
//! journals.

pub(crate) mod base64;
pub(crate) mod clock;
pub(crate) mod ids;
pub(crate) mod journal;
pub(crate) mod jwt;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod tokens;
