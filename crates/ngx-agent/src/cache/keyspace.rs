//! The key spaces of the NGX domain: prefix, schema version and default TTL
//! of each data type.
//!
//! A full Redis key is `{namespace}:{prefix}:{version}:{id}`, for example
//! `ngx:conv:v1:abc`. The schema version moves when a type's shape changes,
//! so old bytes are never decoded into new fields.

use std::time::Duration;

/// One data type's key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpace {
    /// Conversation state, `conv:v1:{conversation_id}`.
    Conversation,
    /// Customer profile, `cust:v1:{customer_id}`.
    Customer,
    /// ML prediction, `pred:v1:{model}:{input_hash}`.
    Prediction,
    /// Tier detection, `tier:v1:{customer_id}:{context_hash}`.
    Tier,
    /// Program recommendation, `prog:rec:v1:{profile_hash}`.
    ProgramRecommendation,
    /// ROI calculation, `roi:consultant:v1:{metrics_hash}`.
    Roi,
    /// Agent configuration, `conf:agent:v1:{name}`.
    AgentConfig,
    /// Knowledge base entry, `know:v1:{topic}`.
    Knowledge,
    /// The program catalog, `prog:catalog:v1:all`.
    ProgramCatalog,
}

impl KeySpace {
    /// Every key space, in a fixed order.
    pub const ALL: [KeySpace; 9] = [
        KeySpace::Conversation,
        KeySpace::Customer,
        KeySpace::Prediction,
        KeySpace::Tier,
        KeySpace::ProgramRecommendation,
        KeySpace::Roi,
        KeySpace::AgentConfig,
        KeySpace::Knowledge,
        KeySpace::ProgramCatalog,
    ];

    /// The prefix, including the schema version: `conv:v1`.
    pub fn prefix(self) -> &'static str {
        match self {
            KeySpace::Conversation => "conv:v1",
            KeySpace::Customer => "cust:v1",
            KeySpace::Prediction => "pred:v1",
            KeySpace::Tier => "tier:v1",
            KeySpace::ProgramRecommendation => "prog:rec:v1",
            KeySpace::Roi => "roi:consultant:v1",
            KeySpace::AgentConfig => "conf:agent:v1",
            KeySpace::Knowledge => "know:v1",
            KeySpace::ProgramCatalog => "prog:catalog:v1",
        }
    }

    /// The short name used in configuration and the admin API: `conversation`, ...
    pub fn name(self) -> &'static str {
        match self {
            KeySpace::Conversation => "conversation",
            KeySpace::Customer => "customer",
            KeySpace::Prediction => "prediction",
            KeySpace::Tier => "tier",
            KeySpace::ProgramRecommendation => "program",
            KeySpace::Roi => "roi",
            KeySpace::AgentConfig => "config",
            KeySpace::Knowledge => "knowledge",
            KeySpace::ProgramCatalog => "catalog",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The default TTL from the design brief.
    pub fn default_ttl(self) -> Duration {
        let minutes = match self {
            KeySpace::Conversation => 30,
            KeySpace::Customer => 60,
            KeySpace::Prediction => 5,
            KeySpace::Tier => 30,
            KeySpace::ProgramRecommendation => 60,
            KeySpace::Roi => 10,
            KeySpace::AgentConfig => 120,
            KeySpace::Knowledge => 24 * 60,
            KeySpace::ProgramCatalog => 60,
        };
        Duration::from_secs(minutes * 60)
    }

    /// The environment variable that overrides the TTL, in seconds.
    pub fn ttl_var(self) -> &'static str {
        match self {
            KeySpace::Conversation => "CACHE_TTL_CONVERSATION",
            KeySpace::Customer => "CACHE_TTL_CUSTOMER",
            KeySpace::Prediction => "CACHE_TTL_PREDICTION",
            KeySpace::Tier => "CACHE_TTL_TIER",
            KeySpace::ProgramRecommendation => "CACHE_TTL_PROGRAM",
            KeySpace::Roi => "CACHE_TTL_ROI",
            KeySpace::AgentConfig => "CACHE_TTL_CONFIG",
            KeySpace::Knowledge => "CACHE_TTL_KNOWLEDGE",
            KeySpace::ProgramCatalog => "CACHE_TTL_CATALOG",
        }
    }

    /// The relative key (without namespace) of `parts` in this space.
    pub fn key(self, parts: &[&str]) -> String {
        let mut key = String::from(self.prefix());
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }
}

/// The tag that groups everything derived from one customer.
pub fn customer_tag(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_design() {
        assert_eq!(KeySpace::Conversation.key(&["abc"]), "conv:v1:abc");
        assert_eq!(
            KeySpace::Prediction.key(&["objection", "h"]),
            "pred:v1:objection:h"
        );
        assert_eq!(KeySpace::Tier.key(&["c1", "h"]), "tier:v1:c1:h");
        assert_eq!(KeySpace::ProgramRecommendation.key(&["h"]), "prog:rec:v1:h");
        assert_eq!(KeySpace::Roi.key(&["h"]), "roi:consultant:v1:h");
        assert_eq!(
            KeySpace::AgentConfig.key(&["default"]),
            "conf:agent:v1:default"
        );
        assert_eq!(KeySpace::Knowledge.key(&["pricing"]), "know:v1:pricing");
        assert_eq!(
            KeySpace::Knowledge.default_ttl(),
            Duration::from_secs(86_400)
        );
        for s in KeySpace::ALL {
            assert_eq!(KeySpace::parse(s.name()), Some(s));
        }
    }
}
