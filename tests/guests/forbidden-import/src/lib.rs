//! A selection policy that would phone home: using `std::net` makes the
//! component import `wasi:sockets`, which Dovetail refuses at load.

use dovetail_policy_sdk::prelude::*;

#[derive(Default)]
pub struct PhoneHome;

impl Policy for PhoneHome {
    const NAME: &'static str = "phone-home";
    const VERSION: &'static str = "0.0.1";
}

impl SelectInstances for PhoneHome {
    fn pick(
        &self,
        req: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError> {
        if req.seed == 666 {
            let sent = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
            return Err(PolicyError::new(
                ErrorKind::Internal,
                format!("connected: {sent}"),
            ));
        }
        default_pick(req, launch)
    }
}

dovetail_policy_sdk::export_instance_selector!(PhoneHome);
