//! The emulator's shared state: registered numbers, deliveries, messaging records, templates, media,
//! faults and the call log behind one lock, and the signals that wake the delivery worker and whoever
//! waits on a delivery.
//!
//! One `std` mutex over everything keeps cross-area rules simple (a PATCH that sets a webhook URL
//! releases that number's parked deliveries atomically). It is never held across an `.await`, and
//! the work under it is map lookups and pushes, so it does not limit a benchmark: media bytes are
//! hashed before it is taken and only shared (`Bytes`) under it.
//!
//! Templates ([`templates`]), media ([`media`]) and business profiles ([`business_profiles`]) have
//! their own files of operations.

mod business_profiles;
mod media;
mod templates;

pub(crate) use self::media::Download;
pub(crate) use self::templates::SubmitRefusal;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rand::seq::SliceRandom;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::calls::{CallRecord, GraphEndpoint};
use crate::config::RetryPolicy;
use crate::customers::{CustomerMessage, InboundReceipt};
use crate::delivery::queue::{DeliveryQueue, NextDelivery};
use crate::delivery::{DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus};
use crate::error::{EmulatorError, InputError};
use crate::faults::{ActiveFault, FaultId, FaultSpec, Faults};
use crate::limits::SendCounters;
use crate::media::{MediaContent, MediaObject, MediaStore};
use crate::messaging::{
    self, MessageStatus, Messaging, Outbound, PricingCategory, ReadReceipt, SentMessage,
};
use crate::payloads::{self, BusinessNumber, InboundMessage, StatusPricing, StatusUpdate};
use crate::phone_numbers::{
    PhoneNumber, PhoneNumberRegistration, PhoneNumberUpdate, RegisteredPhoneNumber, StatusOrder,
    WindowViolation,
};
use crate::records::BoundedLog;
use crate::templates::Templates;

/// Everything the emulator knows, guarded together.
#[derive(Default)]
pub(crate) struct World {
    pub phone_numbers: BTreeMap<String, PhoneNumber>,
    /// Numbers by access token and by business account, so a Graph call's authorization is a
    /// lookup rather than a scan of every number (benchmarks register tens of thousands).
    /// Kept by [`World::index_number`] wherever a number is added or its token or account changes.
    numbers_by_token: HashMap<String, Vec<String>>,
    numbers_by_waba: HashMap<String, Vec<String>>,
    pub deliveries: DeliveryQueue,
    pub messaging: Messaging,
    pub faults: Faults,
    pub calls: BoundedLog<CallRecord>,
    pub templates: Templates,
    pub media: MediaStore,
}

impl World {
    /// The registered numbers that have this access token (a system user's token can serve several).
    pub fn numbers_with_token<'w>(
        &'w self,
        token: &'w str,
    ) -> impl Iterator<Item = &'w PhoneNumber> + 'w {
        self.numbers_by_token
            .get(token)
            .into_iter()
            .flatten()
            .filter_map(|id| self.phone_numbers.get(id))
            .filter(move |n| n.has_access_token(token))
    }

    /// Whether any registered number belongs to this WhatsApp Business Account.
    pub fn is_waba(&self, id: &str) -> bool {
        self.numbers_by_waba
            .get(id)
            .is_some_and(|ids| !ids.is_empty())
    }

    /// Files a number under its token and account, first taking it out from under the ones it
    /// had (`before`), after it was added or updated.
    fn index_number(&mut self, phone_number_id: &str, before: Option<(String, String)>) {
        if let Some((token, waba)) = before {
            for (map, key) in [
                (&mut self.numbers_by_token, token),
                (&mut self.numbers_by_waba, waba),
            ] {
                if let Some(ids) = map.get_mut(&key) {
                    ids.retain(|id| id != phone_number_id);
                    if ids.is_empty() {
                        map.remove(&key);
                    }
                }
            }
        }
        let Some(number) = self.phone_numbers.get(phone_number_id) else {
            return;
        };
        let token = number.access_token.expose_secret().to_owned();
        let waba = number.waba_id.clone();
        self.numbers_by_token
            .entry(token)
            .or_default()
            .push(phone_number_id.to_owned());
        self.numbers_by_waba
            .entry(waba)
            .or_default()
            .push(phone_number_id.to_owned());
    }

    /// A new Graph id for a template or a media object, used by nothing Graph paths can name.
    pub fn new_object_id(&self) -> String {
        loop {
            let id = payloads::new_object_id();
            let taken = self.phone_numbers.contains_key(&id)
                || self.is_waba(&id)
                || self.templates.contains(&id)
                || self.media.contains(&id);
            if !taken {
                return id;
            }
        }
    }
}

/// A send whose body passed every check, to be accepted unless the service window is closed.
pub(crate) struct CheckedSend {
    /// `to` as the request gave it.
    pub to: String,
    /// `to` as digits.
    pub wa_id: String,
    pub message_type: String,
    /// Templates may go outside the service window; nothing else may.
    pub is_template: bool,
    /// `template.name` of a template, for a pricing category the number's registration sets.
    pub template_name: Option<String>,
    /// The stored template a template send was checked against.
    pub template: Option<SentTemplate>,
    pub biz_opaque_callback_data: Option<String>,
    pub request: Value,
}

/// The stored template a send uses: its id for the record, its category for pricing.
pub(crate) struct SentTemplate {
    pub id: String,
    pub category: PricingCategory,
}

/// What became of a checked send.
pub(crate) enum SendOutcome {
    Accepted {
        wamid: String,
    },
    /// Free-form, the customer has not written in 24 hours (or ever), and the number rejects such
    /// sends at once (`window_violation: "reject"`).
    WindowClosed,
    /// Over the number's throughput: 130429.
    ThroughputExceeded,
    /// Over the pair rate for this recipient: 131056.
    PairRateExceeded,
}

/// One attempt the worker is to make, with everything it needs copied out of the lock.
pub(crate) struct DeliveryJob {
    pub id: DeliveryId,
    /// 1 for the first attempt.
    pub attempt_number: u32,
    pub url: Url,
    pub app_secret: SecretString,
    pub body: Bytes,
}

pub(crate) enum NextJob {
    Ready(DeliveryJob),
    At(Instant),
    Idle,
}

/// Cheap to clone: every handler, the worker and [`crate::RunningEmulator`] share one.
#[derive(Clone)]
pub(crate) struct EmulatorState {
    shared: Arc<Shared>,
}

struct Shared {
    world: Mutex<World>,
    /// `http://127.0.0.1:PORT`, for URLs the emulator hands out when a request names no host.
    base_url: String,
    /// Runs delayed work (template reviews) from callers outside the runtime too.
    runtime: tokio::runtime::Handle,
    /// Becomes `true` at shutdown, so delayed work is dropped rather than kept waiting.
    stopped: watch::Receiver<bool>,
    /// Wakes the delivery worker when a delivery may have become due.
    worker_wakeup: Notify,
    /// Bumped whenever a delivery record changes, so `wait_delivered` needs no polling.
    delivery_changes: watch::Sender<u64>,
    retry: RetryPolicy,
}

impl EmulatorState {
    pub fn new(
        retry: RetryPolicy,
        base_url: String,
        runtime: tokio::runtime::Handle,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                world: Mutex::new(World::default()),
                base_url,
                runtime,
                stopped,
                worker_wakeup: Notify::new(),
                delivery_changes: watch::Sender::new(0),
                retry,
            }),
        }
    }

    /// Locks the world; a panic elsewhere while it was held leaves data that is still consistent
    /// enough for a test tool, so poisoning is ignored rather than spread.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.shared
            .world
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.shared.retry
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Runs `work` after `delay`, unless the emulator stops first.
    pub fn after(&self, delay: Duration, work: impl FnOnce(&EmulatorState) + Send + 'static) {
        let state = self.clone();
        let mut stopped = self.shared.stopped.clone();
        self.shared.runtime.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => work(&state),
                _ = stopped.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    pub fn worker_wakeup(&self) -> &Notify {
        &self.shared.worker_wakeup
    }

    fn deliveries_changed(&self) {
        self.shared
            .delivery_changes
            .send_modify(|version| *version += 1);
    }

    pub fn register_phone_number(
        &self,
        registration: PhoneNumberRegistration,
    ) -> Result<RegisteredPhoneNumber, EmulatorError> {
        let number = PhoneNumber::parse(registration)?;
        let mut world = self.world();
        if world.phone_numbers.contains_key(&number.id) {
            return Err(EmulatorError::PhoneNumberAlreadyRegistered(number.id));
        }
        let view = number.view();
        let waba_id = number.waba_id.clone();
        let id = number.id.clone();
        world.phone_numbers.insert(id.clone(), number);
        world.index_number(&id, None);
        templates::add_sample_template(&mut world, &waba_id);
        Ok(view)
    }

    /// Applies an update; setting a webhook URL releases the deliveries that were waiting for one.
    pub fn update_phone_number(
        &self,
        phone_number_id: &str,
        update: PhoneNumberUpdate,
    ) -> Result<RegisteredPhoneNumber, EmulatorError> {
        let mut world = self.world();
        let number = world
            .phone_numbers
            .get_mut(phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id.to_owned()))?;
        let before = (
            number.access_token.expose_secret().to_owned(),
            number.waba_id.clone(),
        );
        number.apply(update)?;
        let view = number.view();
        world.index_number(phone_number_id, Some(before));
        templates::add_sample_template(&mut world, &view.waba_id);
        if view.webhook_url.is_some()
            && world.deliveries.release(phone_number_id, Instant::now()) > 0
        {
            drop(world);
            self.worker_wakeup().notify_one();
            self.deliveries_changed();
        }
        Ok(view)
    }

    pub fn phone_number(&self, phone_number_id: &str) -> Option<RegisteredPhoneNumber> {
        self.world()
            .phone_numbers
            .get(phone_number_id)
            .map(PhoneNumber::view)
    }

    pub fn send_counters(&self, phone_number_id: &str) -> Option<SendCounters> {
        self.world()
            .phone_numbers
            .get(phone_number_id)
            .map(|n| n.counters)
    }

    pub fn phone_numbers(&self) -> Vec<RegisteredPhoneNumber> {
        self.world()
            .phone_numbers
            .values()
            .map(PhoneNumber::view)
            .collect()
    }

    /// Turns a customer's message into a Meta-shaped webhook and queues its delivery; an attached
    /// file becomes a media object of the number first, and the webhook carries its id.
    pub fn customer_writes(
        &self,
        mut message: CustomerMessage,
    ) -> Result<InboundReceipt, EmulatorError> {
        message.check()?;
        let attachment = message
            .take_attachment()?
            .map(|a| (MediaContent::hash(a.bytes), a.mime_type, a.filename));
        let mut world = self.world();
        if !world.phone_numbers.contains_key(&message.phone_number_id) {
            return Err(EmulatorError::UnknownPhoneNumber(
                message.phone_number_id.clone(),
            ));
        }
        let media_id = match attachment {
            Some((content, mime_type, filename)) => {
                let object = MediaObject {
                    id: world.new_object_id(),
                    phone_number_id: message.phone_number_id.clone(),
                    content,
                    mime_type,
                    filename,
                    created_at: SystemTime::now(),
                };
                message.show_media(&object.id, &object.sha256_base64());
                let id = object.id.clone();
                world
                    .media
                    .insert(object)
                    .map_err(|_| EmulatorError::MediaAlreadyExists(id.clone()))?;
                Some(id)
            }
            None => None,
        };
        let wamid = payloads::new_inbound_wamid(&message.from);
        let timestamp = message.timestamp.unwrap_or_else(payloads::unix_now);
        let profile_name = message
            .name
            .clone()
            .unwrap_or_else(|| format!("+{}", message.from));
        let inbound = InboundMessage {
            wamid: &wamid,
            from: &message.from,
            timestamp,
            message_type: &message.message_type,
            content: &message.content,
            context: message.context.as_ref(),
            referral: message.referral.as_ref(),
        };
        let number = world
            .phone_numbers
            .get(&message.phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(message.phone_number_id.clone()))?;
        let business = BusinessNumber {
            waba_id: &number.waba_id,
            phone_number_id: &number.id,
            display_phone_number: &number.display_phone_number,
        };
        let webhook = payloads::inbound_message_webhook(&business, &profile_name, &inbound);
        let body = serialize(&webhook)?;
        let delivery_id =
            self.enqueue_locked(&mut world, &message.phone_number_id, body, Instant::now())?;
        world
            .messaging
            .customer_wrote(&message.phone_number_id, &message.from, &wamid, timestamp);
        drop(world);
        self.after_enqueue();
        Ok(InboundReceipt {
            wamid,
            delivery_id,
            media_id,
        })
    }

    /// Queues any JSON body for signed delivery to the number's webhook, serialized once.
    pub fn deliver_json(
        &self,
        phone_number_id: &str,
        body: &serde_json::Value,
    ) -> Result<DeliveryId, EmulatorError> {
        self.deliver_bytes(phone_number_id, serialize(body)?)
    }

    /// Queues body bytes exactly as given (the admin API passes the caller's JSON text through).
    ///
    /// Customer messages in the body count as written to this number: they open the service window
    /// and may be marked read.
    pub fn deliver_bytes(
        &self,
        phone_number_id: &str,
        body: Bytes,
    ) -> Result<DeliveryId, EmulatorError> {
        let found = messaging::messages_in_webhook(&body);
        let mut world = self.world();
        let id = self.enqueue_locked(&mut world, phone_number_id, body, Instant::now())?;
        for message in found {
            world.messaging.customer_wrote(
                phone_number_id,
                &message.from,
                &message.wamid,
                message.timestamp,
            );
        }
        drop(world);
        self.after_enqueue();
        Ok(id)
    }

    /// Accepts a send unless a limit or the service window refuses it: records it, counts it, and
    /// queues its status webhooks (the number's automatic ones, or a `failed` 131047 when it went
    /// outside the window and the number's `window_violation` is `failed_status`). Limits count
    /// the send at `arrived`, when its request came in.
    pub fn accept_send(
        &self,
        phone_number_id: &str,
        send: CheckedSend,
        arrived: Instant,
    ) -> Result<SendOutcome, EmulatorError> {
        let now = payloads::unix_now();
        let clock = arrived;
        let mut guard = self.world();
        let world = &mut *guard;
        let number = world
            .phone_numbers
            .get_mut(phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id.to_owned()))?;
        if number.enforce_throughput
            && !number
                .throughput
                .allows(clock, number.throughput_per_second)
        {
            number.counters.rejected_throughput += 1;
            return Ok(SendOutcome::ThroughputExceeded);
        }
        if number.enforce_pair_rate && !number.pairs.allows(&send.wa_id, clock, number.pair_rate) {
            number.counters.rejected_pair_rate += 1;
            return Ok(SendOutcome::PairRateExceeded);
        }
        let window_open = world
            .messaging
            .window_open(phone_number_id, &send.wa_id, now);
        let outside_window = number.enforce_service_window && !send.is_template && !window_open;
        if outside_window && number.window_violation == WindowViolation::Reject {
            number.counters.rejected_window += 1;
            return Ok(SendOutcome::WindowClosed);
        }

        // Accepted: it uses up the limits and counts.
        number.throughput.record(clock);
        number.pairs.record(&send.wa_id, clock, number.pair_rate);
        number.counters.accepted_sends += 1;
        if outside_window {
            number.counters.failed_window += 1;
        }

        let wamid = payloads::new_outbound_wamid(&send.wa_id);
        let category = if send.is_template {
            send.template_name
                .as_deref()
                .and_then(|name| number.template_category(name))
                .or(send.template.as_ref().map(|t| t.category))
                .unwrap_or(PricingCategory::Marketing)
        } else {
            PricingCategory::Service
        };
        let outbound = Outbound {
            phone_number_id: phone_number_id.to_owned(),
            wa_id: send.wa_id.clone(),
            biz_opaque_callback_data: send.biz_opaque_callback_data,
            category,
            conversation_id: payloads::new_conversation_id(),
        };
        let business = BusinessNumber {
            waba_id: &number.waba_id,
            phone_number_id: &number.id,
            display_phone_number: &number.display_phone_number,
        };
        // Each status with its timestamp, in the order they happen.
        let failed_errors = payloads::reengagement_errors();
        let happening: Vec<(MessageStatus, Option<&Value>)> = if outside_window {
            vec![(MessageStatus::Failed, Some(&failed_errors))]
        } else {
            number
                .auto_statuses
                .iter()
                .filter(|&&status| status != MessageStatus::Played || send.message_type == "audio")
                .map(|&status| (status, None))
                .collect()
        };
        let mut bodies = Vec::with_capacity(happening.len());
        for (n, (status, errors)) in (1u32..).zip(&happening) {
            let happened_after = number.auto_status_delay.saturating_mul(n);
            let seconds_later = i64::try_from(happened_after.as_secs()).unwrap_or(i64::MAX);
            let update = status_update(
                &outbound,
                &wamid,
                *status,
                now.saturating_add(seconds_later),
                *errors,
            );
            bodies.push(serialize(&payloads::status_webhook(&business, &update))?);
        }
        let order = delivery_order(bodies.len(), number.status_order, number.duplicate_statuses);
        let delay = number.auto_status_delay;
        world.messaging.record_sent(
            SentMessage {
                phone_number_id: phone_number_id.to_owned(),
                wamid: wamid.clone(),
                to: send.to,
                wa_id: send.wa_id,
                message_type: send.message_type,
                request: send.request,
                template_id: send.template.map(|t| t.id),
                received_at: SystemTime::now(),
            },
            outbound,
        );
        let queued = !order.is_empty();
        for (n, index) in (1u32..).zip(order) {
            let due = clock + delay.saturating_mul(n);
            self.enqueue_locked(world, phone_number_id, bodies[index].clone(), due)?;
        }
        drop(guard);
        if queued {
            self.after_enqueue();
        }
        Ok(SendOutcome::Accepted { wamid })
    }

    /// Records a mark-as-read; `false` (and nothing recorded) when the number received no such wamid.
    pub fn mark_read(
        &self,
        phone_number_id: &str,
        wamid: &str,
        typing_indicator: bool,
    ) -> Result<bool, EmulatorError> {
        let mut world = self.world();
        if !world.phone_numbers.contains_key(phone_number_id) {
            return Err(EmulatorError::UnknownPhoneNumber(
                phone_number_id.to_owned(),
            ));
        }
        if !world.messaging.received(phone_number_id, wamid) {
            return Ok(false);
        }
        world.messaging.record_read_receipt(ReadReceipt {
            phone_number_id: phone_number_id.to_owned(),
            wamid: wamid.to_owned(),
            typing_indicator,
            received_at: SystemTime::now(),
        });
        Ok(true)
    }

    /// Queues one status webhook about a message the number sent; a `failed` status without `errors`
    /// gets Meta's 131026 (undeliverable).
    pub fn deliver_status(
        &self,
        phone_number_id: &str,
        wamid: &str,
        status: MessageStatus,
        errors: Option<Value>,
    ) -> Result<DeliveryId, EmulatorError> {
        if errors.as_ref().is_some_and(|e| !e.is_array()) {
            return Err(InputError::new(
                "errors",
                "must be a JSON array of error objects, e.g. [{\"code\":131026,\"title\":\"Message undeliverable\"}]",
            )
            .into());
        }
        let errors = match status {
            MessageStatus::Failed => Some(errors.unwrap_or_else(payloads::undeliverable_errors)),
            _ => errors,
        };
        let mut world = self.world();
        let number = world
            .phone_numbers
            .get(phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id.to_owned()))?;
        let outbound = world
            .messaging
            .outbound(phone_number_id, wamid)
            .ok_or_else(|| EmulatorError::UnknownMessage {
                phone_number_id: phone_number_id.to_owned(),
                wamid: wamid.to_owned(),
            })?;
        let business = BusinessNumber {
            waba_id: &number.waba_id,
            phone_number_id: &number.id,
            display_phone_number: &number.display_phone_number,
        };
        let update = status_update(
            outbound,
            wamid,
            status,
            payloads::unix_now(),
            errors.as_ref(),
        );
        let body = serialize(&payloads::status_webhook(&business, &update))?;
        let id = self.enqueue_locked(&mut world, phone_number_id, body, Instant::now())?;
        drop(world);
        self.after_enqueue();
        Ok(id)
    }

    pub fn sent_messages(&self, phone_number_id: Option<&str>) -> Vec<SentMessage> {
        self.world().messaging.sent(phone_number_id)
    }

    pub fn read_receipts(&self, phone_number_id: Option<&str>) -> Vec<ReadReceipt> {
        self.world().messaging.read_receipts(phone_number_id)
    }

    pub fn add_fault(&self, spec: FaultSpec) -> Result<FaultId, EmulatorError> {
        Ok(self.world().faults.add(spec)?)
    }

    pub fn faults(&self) -> Vec<ActiveFault> {
        self.world().faults.list()
    }

    pub fn remove_fault(&self, id: FaultId) -> Result<(), EmulatorError> {
        if self.world().faults.remove(id) {
            Ok(())
        } else {
            Err(EmulatorError::UnknownFault(id))
        }
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    pub fn record_call(&self, call: CallRecord) {
        self.world().calls.push(call);
    }

    /// Graph calls, oldest first, optionally only one number's or one endpoint's.
    pub fn calls(
        &self,
        phone_number_id: Option<&str>,
        endpoint: Option<GraphEndpoint>,
    ) -> Vec<CallRecord> {
        self.world()
            .calls
            .iter()
            .filter(|c| phone_number_id.is_none_or(|id| c.phone_number_id.as_deref() == Some(id)))
            .filter(|c| endpoint.is_none_or(|e| e == c.endpoint))
            .cloned()
            .collect()
    }

    fn enqueue_locked(
        &self,
        world: &mut World,
        phone_number_id: &str,
        body: Bytes,
        due: Instant,
    ) -> Result<DeliveryId, EmulatorError> {
        let has_url = world
            .phone_numbers
            .get(phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id.to_owned()))?
            .webhook_url
            .is_some();
        Ok(world.deliveries.push(phone_number_id, body, has_url, due))
    }

    fn after_enqueue(&self) {
        self.worker_wakeup().notify_one();
        self.deliveries_changed();
    }

    /// The next attempt to make; a due delivery whose number lost its webhook URL is parked instead.
    pub fn next_job(&self, now: Instant) -> NextJob {
        let mut world = self.world();
        loop {
            let id = match world.deliveries.next(now) {
                NextDelivery::Due(id) => id,
                NextDelivery::At(when) => return NextJob::At(when),
                NextDelivery::Idle => return NextJob::Idle,
            };
            let Some(record) = world.deliveries.get(id) else {
                continue;
            };
            let target = world
                .phone_numbers
                .get(&record.phone_number_id)
                .and_then(|n| Some((n.webhook_url.clone()?, n.app_secret.clone())));
            match target {
                Some((url, app_secret)) => {
                    return NextJob::Ready(DeliveryJob {
                        id,
                        attempt_number: u32::try_from(record.attempts.len() + 1)
                            .unwrap_or(u32::MAX),
                        url,
                        app_secret,
                        body: record.body.clone(),
                    });
                }
                None => world.deliveries.park(id),
            }
        }
    }

    pub fn record_attempt(&self, id: DeliveryId, attempt: DeliveryAttempt) {
        let mut world = self.world();
        world
            .deliveries
            .record_attempt(id, attempt, &self.shared.retry, Instant::now());
        drop(world);
        self.worker_wakeup().notify_one();
        self.deliveries_changed();
    }

    pub fn delivery(&self, id: DeliveryId) -> Option<DeliveryRecord> {
        self.world().deliveries.get(id).cloned()
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.world().deliveries.all().cloned().collect()
    }

    /// Waits until the delivery got a 200, failed for good, or `timeout` passed.
    pub async fn wait_delivered(
        &self,
        id: DeliveryId,
        timeout: Duration,
    ) -> Result<DeliveryRecord, EmulatorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before the first look means no change between the look and the wait is missed.
        let mut changes = self.shared.delivery_changes.subscribe();
        loop {
            let record = self
                .delivery(id)
                .ok_or(EmulatorError::UnknownDelivery(id))?;
            match record.status {
                DeliveryStatus::Delivered => return Ok(record),
                DeliveryStatus::Failed => {
                    return Err(EmulatorError::DeliveryFailed(Box::new(record)));
                }
                DeliveryStatus::Pending | DeliveryStatus::AwaitingWebhookUrl => {}
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                // The sender lives in `shared`, which `self` keeps alive, so `changed` cannot fail.
                Ok(_) => {}
                Err(_) => {
                    let latest = self.delivery(id).unwrap_or(record);
                    return Err(EmulatorError::WaitTimedOut(Box::new(latest)));
                }
            }
        }
    }
}

/// A status of a sent message; failed ones carry errors instead of conversation and pricing.
fn status_update<'a>(
    outbound: &'a Outbound,
    wamid: &'a str,
    status: MessageStatus,
    timestamp: i64,
    errors: Option<&'a Value>,
) -> StatusUpdate<'a> {
    StatusUpdate {
        wamid,
        status: status.as_str(),
        timestamp,
        recipient_id: &outbound.wa_id,
        biz_opaque_callback_data: outbound.biz_opaque_callback_data.as_deref(),
        pricing: (status != MessageStatus::Failed).then_some(StatusPricing {
            conversation_id: &outbound.conversation_id,
            category: outbound.category.as_str(),
        }),
        errors,
    }
}

/// Which status body goes out in which slot: `count` statuses in the number's order, each repeated
/// `duplicates` extra times in a row.
fn delivery_order(count: usize, order: StatusOrder, duplicates: u32) -> Vec<usize> {
    let mut indexes: Vec<usize> = (0..count).collect();
    match order {
        StatusOrder::InOrder => {}
        StatusOrder::Reversed => indexes.reverse(),
        StatusOrder::Shuffled => indexes.shuffle(&mut rand::rng()),
    }
    let copies = usize::try_from(duplicates).unwrap_or(0).saturating_add(1);
    indexes
        .into_iter()
        .flat_map(|index| std::iter::repeat_n(index, copies))
        .collect()
}

fn serialize(body: &serde_json::Value) -> Result<Bytes, EmulatorError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| InputError::new("body", format!("cannot be serialized: {e}")).into())
}
