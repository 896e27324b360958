// Generator of derive_vectors.json (see README.md): the values packr's
// #[derive(GraphValue)] builds for recursive enums, encoded by packr-abi v0.7.0.
//
// The From<T> for Value impls below are a hand expansion of what pack-derive v0.7.0
// generates for tuple-like enum variants (type_name = enum name, case_name = Rust
// variant name, tag = declaration index, payload = one Value per field; Box<T> is
// transparent, Vec<T> is List{elem_type: T's known type}). Build the crate as in
// README.md, then: rustc --edition 2021 derive_vectors.rs --extern packr_abi=... && ./derive_vectors
use packr_abi::{Value, ValueType, KnownValueType, encode};
fn hex(b:&[u8])->String{b.iter().map(|x|format!("{:02x}",x)).collect()}

// Hand expansion of #[derive(GraphValue)] (pack-derive v0.7.0, derive_enum, unnamed fields)
#[derive(Clone)] enum Tree { Leaf(i64), Node(Vec<Tree>) }
impl From<Tree> for Value { fn from(v: Tree)->Value { match v {
  Tree::Leaf(f0)=>Value::Variant{type_name:String::from("Tree"),case_name:String::from("Leaf"),tag:0usize,payload:vec![Value::from(f0)]},
  Tree::Node(f0)=>Value::Variant{type_name:String::from("Tree"),case_name:String::from("Node"),tag:1usize,payload:vec![Value::from(f0)]},
}}}
impl KnownValueType for Tree { fn known_value_type()->ValueType { ValueType::Variant(String::from("Tree")) } }

#[derive(Clone)] enum Expr { Num(i64), Add(Box<Expr>, Box<Expr>), Neg(Box<Expr>) }
impl From<Expr> for Value { fn from(v: Expr)->Value { match v {
  Expr::Num(f0)=>Value::Variant{type_name:String::from("Expr"),case_name:String::from("Num"),tag:0usize,payload:vec![Value::from(f0)]},
  Expr::Add(f0,f1)=>Value::Variant{type_name:String::from("Expr"),case_name:String::from("Add"),tag:1usize,payload:vec![Value::from(f0),Value::from(f1)]},
  Expr::Neg(f0)=>Value::Variant{type_name:String::from("Expr"),case_name:String::from("Neg"),tag:2usize,payload:vec![Value::from(f0)]},
}}}
impl KnownValueType for Expr { fn known_value_type()->ValueType { ValueType::Variant(String::from("Expr")) } }

// A case holding the union inside a tuple and inside an option/list
#[derive(Clone)] enum Sexp { Atom(String), Pair((Box<Sexp>, Box<Sexp>)), Many(Vec<(String, Sexp)>), Maybe(Option<Box<Sexp>>), Nil }
impl From<Sexp> for Value { fn from(v: Sexp)->Value { match v {
  Sexp::Atom(f0)=>Value::Variant{type_name:String::from("Sexp"),case_name:String::from("Atom"),tag:0usize,payload:vec![Value::from(f0)]},
  Sexp::Pair(f0)=>Value::Variant{type_name:String::from("Sexp"),case_name:String::from("Pair"),tag:1usize,payload:vec![Value::from(f0)]},
  Sexp::Many(f0)=>Value::Variant{type_name:String::from("Sexp"),case_name:String::from("Many"),tag:2usize,payload:vec![Value::from(f0)]},
  Sexp::Maybe(f0)=>Value::Variant{type_name:String::from("Sexp"),case_name:String::from("Maybe"),tag:3usize,payload:vec![Value::from(f0)]},
  Sexp::Nil=>Value::Variant{type_name:String::from("Sexp"),case_name:String::from("Nil"),tag:4usize,payload:vec![]},
}}}
impl KnownValueType for Sexp { fn known_value_type()->ValueType { ValueType::Variant(String::from("Sexp")) } }

fn show(name:&str, v: Value){ println!("{}\t{}\t{}", name, v, hex(&encode(&v).unwrap())); }
fn main(){
  show("tree_leaf", Tree::Leaf(42).into());
  show("tree_nested", Tree::Node(vec![Tree::Leaf(1), Tree::Node(vec![Tree::Leaf(2), Tree::Leaf(3)]), Tree::Leaf(4)]).into());
  show("tree_empty_node", Tree::Node(vec![]).into());
  show("expr_add", Expr::Add(Box::new(Expr::Num(1)), Box::new(Expr::Neg(Box::new(Expr::Num(2))))).into());
  show("sexp_pair", Sexp::Pair((Box::new(Sexp::Atom("a".into())), Box::new(Sexp::Nil))).into());
  show("sexp_many", Sexp::Many(vec![("k".to_string(), Sexp::Atom("v".into())), ("n".to_string(), Sexp::Nil)]).into());
  show("sexp_maybe", Sexp::Maybe(Some(Box::new(Sexp::Nil))).into());
  show("sexp_maybe_none", Sexp::Maybe(None).into());
}
