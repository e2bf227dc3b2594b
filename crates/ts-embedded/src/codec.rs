//! The little-endian binary form of log entries and checkpoints: fixed-width integers and
//! length-prefixed strings, written by hand because the shapes are few and the volume large.

use membrain_timeseries::{
    AttributeName, Dimensions, MeasureType, MeasureValue, Span, TableRef, Timestamp, TsError,
};

#[derive(Default)]
pub(crate) struct Encoder {
    pub(crate) bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A count or length; nothing this store writes comes near 4 G.
    pub(crate) fn len(&mut self, value: usize) {
        self.u32(u32::try_from(value).unwrap_or(u32::MAX));
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.len(value.len());
        self.bytes.extend_from_slice(value.as_bytes());
    }

    pub(crate) fn table(&mut self, table: &TableRef) {
        self.str(table.database.as_str());
        self.str(table.table.as_str());
    }

    pub(crate) fn dimensions(&mut self, dimensions: &Dimensions) {
        self.len(dimensions.len());
        for (name, value) in dimensions.iter() {
            self.str(name.as_str());
            self.str(value);
        }
    }

    pub(crate) fn kind(&mut self, kind: MeasureType) {
        self.u8(match kind {
            MeasureType::Double => 0,
            MeasureType::Bigint => 1,
            MeasureType::Boolean => 2,
            MeasureType::Varchar => 3,
            MeasureType::Timestamp => 4,
        });
    }

    pub(crate) fn value(&mut self, value: &MeasureValue) {
        self.kind(value.kind());
        match value {
            MeasureValue::Double(number) => self.f64(*number),
            MeasureValue::Bigint(number) => self.i64(*number),
            MeasureValue::Boolean(flag) => self.u8(u8::from(*flag)),
            MeasureValue::Varchar(text) => self.str(text),
            MeasureValue::Timestamp(time) => self.i64(time.as_micros()),
        }
    }
}

pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
    /// What is being read, for the error message (a file name).
    what: &'a str,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Self { bytes, at: 0, what }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    pub(crate) fn corrupt(&self, detail: impl std::fmt::Display) -> TsError {
        TsError::Internal(format!(
            "{} is corrupt at byte {}: {detail}; restore the data directory from a backup or move \
             the file away",
            self.what, self.at
        ))
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], TsError> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.corrupt("it ends early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TsError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, TsError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, TsError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn len(&mut self) -> Result<usize, TsError> {
        Ok(self.u32()? as usize)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, TsError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, TsError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub(crate) fn string(&mut self) -> Result<String, TsError> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupt("a string is not UTF-8"))
    }

    pub(crate) fn name(&mut self) -> Result<AttributeName, TsError> {
        let raw = self.string()?;
        AttributeName::parse(&raw).map_err(|error| self.corrupt(error))
    }

    pub(crate) fn table(&mut self) -> Result<TableRef, TsError> {
        let database = self.string()?;
        let table = self.string()?;
        TableRef::parse(&database, &table).map_err(|error| self.corrupt(error))
    }

    pub(crate) fn dimensions(&mut self) -> Result<Dimensions, TsError> {
        let count = self.len()?;
        let mut pairs = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            pairs.push((self.name()?, self.string()?));
        }
        Ok(Dimensions::new(pairs))
    }

    pub(crate) fn kind(&mut self) -> Result<MeasureType, TsError> {
        Ok(match self.u8()? {
            0 => MeasureType::Double,
            1 => MeasureType::Bigint,
            2 => MeasureType::Boolean,
            3 => MeasureType::Varchar,
            4 => MeasureType::Timestamp,
            other => return Err(self.corrupt(format!("unknown measure type {other}"))),
        })
    }

    pub(crate) fn value(&mut self) -> Result<MeasureValue, TsError> {
        Ok(match self.kind()? {
            MeasureType::Double => MeasureValue::Double(self.f64()?),
            MeasureType::Bigint => MeasureValue::Bigint(self.i64()?),
            MeasureType::Boolean => MeasureValue::Boolean(self.u8()? != 0),
            MeasureType::Varchar => MeasureValue::Varchar(self.string()?),
            MeasureType::Timestamp => MeasureValue::Timestamp(Timestamp::from_micros(self.i64()?)),
        })
    }

    pub(crate) fn span(&mut self) -> Result<Span, TsError> {
        let micros = self.i64()?;
        if micros <= 0 {
            return Err(self.corrupt("a retention is not positive"));
        }
        Ok(Span::from_micros(micros))
    }
}
