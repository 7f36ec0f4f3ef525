//! The operator's rate as the API exposes it (eDRV-style): at most one price component per
//! dimension, a tax percent per component, an optional parking grace period. A session keeps a
//! snapshot of its rate, so a rate edited mid-session never changes what the driver pays.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// What a price component charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dimension {
    /// Once per session.
    Flat,
    /// Per kWh delivered.
    Energy,
    /// Per hour of charging.
    Time,
    /// Per hour connected but not charging (overstay).
    ParkingTime,
}

/// One price component of a rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateComponent {
    /// What it charges for.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Price per unit in major units of the rate's currency, excluding tax
    /// (per kWh, per hour, or per session for FLAT).
    pub price: Decimal,
    /// Tax in percent, added on top of `price`; omitted = no tax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Decimal>,
    /// Billing granularity: seconds for TIME / PARKING_TIME, Wh for ENERGY (OCPI semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_size: Option<u32>,
    /// Hours of free parking before PARKING_TIME is billed (PARKING_TIME only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Decimal>,
}

/// A rate: the price list attached to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Currency of every price in the rate.
    pub currency: Currency,
    /// At most one component per dimension.
    pub price_components: Vec<RateComponent>,
}

/// Why a rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Two components share a dimension; keep one per type.
    #[error("the rate has more than one {0:?} component; keep one component per type")]
    DuplicateDimension(Dimension),
    /// A negative price or tax.
    #[error("price_components[{index}]: {field} must not be negative")]
    Negative { index: usize, field: &'static str },
    /// A grace period on a component other than PARKING_TIME.
    #[error("price_components[{index}]: grace_period is only allowed on PARKING_TIME")]
    GraceOutsideParking { index: usize },
}

impl Rate {
    /// Checks the rules the API enforces on rates.
    pub fn validate(&self) -> Result<(), RateError> {
        let mut seen = Vec::new();
        for (index, c) in self.price_components.iter().enumerate() {
            if seen.contains(&c.dimension) {
                return Err(RateError::DuplicateDimension(c.dimension));
            }
            seen.push(c.dimension);
            if c.price.is_sign_negative() && !c.price.is_zero() {
                return Err(RateError::Negative {
                    index,
                    field: "price",
                });
            }
            if c.tax.is_some_and(|t| t.is_sign_negative() && !t.is_zero()) {
                return Err(RateError::Negative {
                    index,
                    field: "tax",
                });
            }
            if c.grace_period
                .is_some_and(|g| g.is_sign_negative() && !g.is_zero())
            {
                return Err(RateError::Negative {
                    index,
                    field: "grace_period",
                });
            }
            if c.grace_period.is_some() && c.dimension != Dimension::ParkingTime {
                return Err(RateError::GraceOutsideParking { index });
            }
        }
        Ok(())
    }

    /// The component for `dimension`, if the rate has one.
    pub fn component(&self, dimension: Dimension) -> Option<&RateComponent> {
        self.price_components
            .iter()
            .find(|c| c.dimension == dimension)
    }

    /// Whether the rate bills overstay. Such sessions cannot be stopped through the API: only
    /// unplugging (or the hold running out) ends them.
    pub fn has_parking_time(&self) -> bool {
        self.component(Dimension::ParkingTime).is_some()
    }
}
