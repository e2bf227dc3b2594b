//! stub
use super::StackOptions;
use crate::Topology;
pub fn cloudformation(_topology: &Topology, _stack: &StackOptions) -> String {
    String::new()
}
