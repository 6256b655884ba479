//! Test support: scripted mock vendors and a real gateway process.
#![allow(dead_code)]

pub mod gateway;
pub mod mock_openai;
