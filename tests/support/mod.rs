//! Test support: scripted mock vendors and a real gateway process.
#![allow(dead_code)]

pub mod db;
pub mod gateway;
pub mod mock_anthropic;
pub mod mock_gemini;
pub mod mock_http;
pub mod mock_openai;
pub mod redis;
