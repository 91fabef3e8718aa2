//! The script language: [`lexer`] (tokens), [`parser`] (the grammar),
//! [`ast`] (what a script says), [`error`] (where it is wrong).

pub mod ast;
pub mod error;
pub mod lexer;
pub mod parser;

pub use error::ParseError;
pub use parser::parse;
