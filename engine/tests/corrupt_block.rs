// SPDX-License-Identifier: GPL-2.0

//! `Error::Corrupt` names a block only when one block is at fault.

use vtier_engine::error::Error;
use vtier_engine::io::paddr::PAddr;

#[test]
fn display_names_the_block_only_when_there_is_one() {
    let one = Error::Corrupt {
        block: Some(7),
        what: "summary page identity",
    };
    assert_eq!(one.to_string(), "block 7: corrupt summary page identity");
    let none = Error::Corrupt {
        block: None,
        what: "redo record sequence",
    };
    assert_eq!(none.to_string(), "corrupt redo record sequence");
}

#[test]
fn an_address_not_read_from_a_block_names_none() {
    assert_eq!(
        PAddr::from_raw(0, None),
        Err(Error::Corrupt {
            block: None,
            what: "physical address"
        })
    );
    assert_eq!(
        PAddr::from_raw(0, Some(12)),
        Err(Error::Corrupt {
            block: Some(12),
            what: "physical address"
        })
    );
}
