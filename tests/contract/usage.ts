// What a TypeScript integrator writes against the types openapi-typescript
// generates from /api/v1/openapi.json. test_typescript.py generates
// ./schema.d.ts beside a copy of this file (the webhook event list below is
// filled in from webhooks/events.py) and runs `tsc --strict --noEmit`: every
// line must compile, and every `@ts-expect-error` line must be an error.
import type { components, paths, webhooks } from "./schema";

// ---- type-level helpers -------------------------------------------------------
type IsNever<T> = [T] extends [never] ? true : false;
/** Declared: neither `never` (absent) nor `unknown`/`any` (an undeclared index signature). */
type IsDeclared<T> = IsNever<T> extends true ? false : unknown extends T ? false : true;
/** An object type with named properties (not never, unknown, any or a free-form record). */
type HasNamedKeys<T> = IsDeclared<T> extends false
  ? false
  : string extends keyof NonNullable<T>
    ? false
    : IsNever<keyof NonNullable<T>> extends true
      ? false
      : true;

// ---- the quickstart: create a donation with a per-call Idempotency-Key -------
type CreateDonation = paths["/api/v1/donations"]["post"];
type DonationCreateBody = NonNullable<CreateDonation["requestBody"]>["content"]["application/json"];

// A header of the call, typed as a string (openapi-typescript writes `never` when none is declared).
type IdempotencyKey = NonNullable<CreateDonation["parameters"]["header"]>["Idempotency-Key"];
const idempotencyKey: IdempotencyKey = "5c1f0a7e-2f5e-4b7b-9a55-6d0e4c3c2f11";
type PatchDonation = paths["/api/v1/donations/{id}"]["patch"];
const patchKey: NonNullable<PatchDonation["parameters"]["header"]>["Idempotency-Key"] = "c9a5b0f2-3a51-4f7e-8f0a-1d2e3f405162";
type CreateDonor = paths["/api/v1/donors"]["post"];
const donorKey: NonNullable<CreateDonor["parameters"]["header"]>["Idempotency-Key"] = "0f6d1c3e-9b8a-4c7d-8e5f-a1b2c3d4e5f6";

const monetary: DonationCreateBody = {
  donor_id: "cm3abcde0001abc123xyz456",
  donation_type: "MONETARY",
  amount_cents: 5000,
  donation_date: "2027-03-15",
  payment_method: "CASH",
};
const inKind: DonationCreateBody = {
  donor_id: "cm3abcde0001abc123xyz456",
  donation_type: "IN_KIND",
  amount_cents: 420000,
  donation_date: "2027-03-15",
  in_kind_category: "SERVICES",
  in_kind_description: "Pro bono legal advice on candidate eligibility",
};
// The request body is a union by donation_type: an IN_KIND gift without its category does not type-check.
// @ts-expect-error in_kind_category is required when donation_type is IN_KIND
const inKindWithoutCategory: DonationCreateBody = { donor_id: "cm3abcde0001abc123xyz456", donation_type: "IN_KIND", amount_cents: 420000, donation_date: "2027-03-15", in_kind_description: "Pro bono legal advice" };

// ---- response headers are declared, so they are typed -----------------------
type Created = CreateDonation["responses"][201];
const replayedDeclared: IsDeclared<Created["headers"]["Idempotent-Replayed"]> = true;
const createdRequestIdDeclared: IsDeclared<Created["headers"]["x-request-id"]> = true;
type WhoamiOk = paths["/api/v1/whoami"]["get"]["responses"][200];
const requestIdDeclared: IsDeclared<WhoamiOk["headers"]["x-request-id"]> = true;
const rateLimitDeclared: IsDeclared<WhoamiOk["headers"]["RateLimit-Limit"]> = true;
const rateRemainingDeclared: IsDeclared<WhoamiOk["headers"]["RateLimit-Remaining"]> = true;
const rateResetDeclared: IsDeclared<WhoamiOk["headers"]["RateLimit-Reset"]> = true;

// ---- the Donation object ------------------------------------------------------
type Donation = components["schemas"]["Donation"];
function describe(d: Donation): string {
  const jurisdiction = d.jurisdiction;
  return `${d.id} ${d.amount_cents} ${d.donation_type} ${String(jurisdiction)}`;
}

// ---- pagination, bracket filters, expand --------------------------------------
type ListDonations = paths["/api/v1/donations"]["get"];
const query: NonNullable<ListDonations["parameters"]["query"]> = {
  limit: 2,
  starting_after: "cm3abcde0001abc123xyz456",
  "amount_cents[gte]": 5000,
  "expand[]": ["donor"],
};
type DonationPage = ListDonations["responses"][200]["content"]["application/json"];
function donorEmails(page: DonationPage): Array<string | null | undefined> {
  const more: boolean = page.has_more;
  return more ? page.data.map((d) => d.donor?.email) : [];
}

// ---- a typed error -------------------------------------------------------------
type ErrorDetail = components["schemas"]["ErrorEnvelope"]["error"];
function duplicateOf(error: ErrorDetail): string | null | undefined {
  if (error.code === "conflict") {
    return error.existing_id;
  }
  return null;
}
const errorCodeTyped: HasNamedKeys<ErrorDetail> = true;

// ---- webhooks: every event type, with a typed `data` --------------------------
type WebhookBody<K extends keyof webhooks> = webhooks[K] extends { post?: infer P }
  ? NonNullable<P> extends { requestBody?: infer R }
    ? NonNullable<R> extends { content: { "application/json": infer J } }
      ? J
      : never
    : never
  : never;
type EventData<K extends keyof webhooks> = WebhookBody<K> extends { data: infer D } ? D : never;
type HasTypedData<K extends string> = K extends keyof webhooks ? HasNamedKeys<EventData<K>> : false;
type WebhookEventType<K extends string> = K extends keyof webhooks ? WebhookBody<K> extends { type: infer T } ? T : never : never;

const webhooksHaveNamedEvents: string extends keyof webhooks ? false : true = true;
const donorCreatedEmail: EventData<"donor.created">["email"] = "alice@example.com";
/*EVENT_CHECKS*/

export {
  idempotencyKey, patchKey, donorKey, monetary, inKind, inKindWithoutCategory, replayedDeclared,
  createdRequestIdDeclared, requestIdDeclared, rateLimitDeclared, rateRemainingDeclared, rateResetDeclared,
  describe, query, donorEmails, duplicateOf, errorCodeTyped, webhooksHaveNamedEvents, donorCreatedEmail,
};
