//! stub
use crate::Topology;
pub fn terraform(_topology: &Topology) -> String {
    String::new()
}
