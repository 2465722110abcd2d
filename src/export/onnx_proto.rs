//! The part of `onnx.proto` (github.com/onnx/onnx, `onnx/onnx.proto`) that an exported model
//! uses, as prost messages written by hand with the proto's own field numbers: no protoc, no
//! build script. A `oneof` is written as its member fields (the same bytes on the wire); scalar
//! fields whose zero value means something (an attribute's `i`, `f`) are `Option`s, so a 0 is
//! written rather than left out.

/// `ModelProto`: the file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// IR version of the format (7 goes with opset 13).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The operator sets the graph uses.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// `qnn`.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// qnn's version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// What the model is, for people.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The network.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Facts about the model (data set, classes, input scaling).
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `OperatorSetIdProto`: an operator set and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// "" for the standard ONNX operators.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Its version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `StringStringEntryProto`: a key and a value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`: nodes in topological order, their constant inputs, the graph's inputs and
/// outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, each after the nodes it reads.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (weights, scales, constants).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// What it is.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// The graph's inputs (not its initializers).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The graph's outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator applied to named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names ("" for a left-out optional input).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator, e.g. `Conv`.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// The operator's domain: "" for ONNX, `qonnx.custom_op.general` for QONNX's.
    #[prost(string, tag = "7")]
    pub domain: String,
}

/// `AttributeProto`: a named attribute value of one of the types below.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Which value field is used ([`attribute_type`]).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// A float.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// An integer.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// A string (UTF-8 bytes).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// A list of integers.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `AttributeProto.AttributeType` values.
pub mod attribute_type {
    /// A float (`f`).
    pub const FLOAT: i32 = 1;
    /// An integer (`i`).
    pub const INT: i32 = 2;
    /// A string (`s`).
    pub const STRING: i32 = 3;
    /// A list of integers (`ints`).
    pub const INTS: i32 = 7;
}

/// `TensorProto`: a constant tensor, its values as little-endian bytes in `raw_data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Its shape; none for a scalar.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// Its element type ([`data_type`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Its name (what nodes read).
    #[prost(string, tag = "8")]
    pub name: String,
    /// The values, row-major, little-endian.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// `TensorProto.DataType` values.
pub mod data_type {
    /// f32.
    pub const FLOAT: i32 = 1;
    /// i8.
    pub const INT8: i32 = 3;
    /// i32.
    pub const INT32: i32 = 6;
    /// i64.
    pub const INT64: i32 = 7;
}

/// `ValueInfoProto`: a graph input's or output's name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto` with its `tensor_type` member of the `value` oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// A tensor.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`: element type and shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// The element type ([`data_type`]).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`: a list of dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size or a name (the `value` oneof's two members).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A named size (the batch: `N`).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}
