-- 0001 initial_store: the store schema as first released. NEVER EDIT: changes go in a new migration.
--
-- The provider runs this after `SET ROLE <db>_owner`, so every object belongs to that role. No
-- role is named and nothing is granted here: the provider manages privileges (default privileges
-- cover these tables). Keys are identity columns, so inserting needs no sequence privilege.
-- Money is integer cents.

create function public.set_updated_at() returns trigger
language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

comment on function public.set_updated_at() is
    'BEFORE UPDATE trigger: stamps updated_at with the transaction time';

-- Buyers as the checkout knows them; one row per email address (compared case-insensitively).
create table public.customers (
    id bigint generated always as identity primary key,
    first_name text not null,
    last_name text not null,
    email text not null check (email like '%_@_%'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index customers_email_key on public.customers (lower(email));

create table public.widgets (
    id bigint generated always as identity primary key,
    name text not null check (name <> ''),
    description text not null default '',
    inventory_level integer not null default 0 check (inventory_level >= 0),
    price_cents bigint not null check (price_cents >= 0),
    image text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Order statuses. Seeded ids (1 Cleared, 2 Refunded, 3 Cancelled) are stable, but code should
-- look rows up by name.
create table public.statuses (
    id bigint generated always as identity primary key,
    name text not null unique,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
insert into public.statuses (name)
values ('Cleared'), ('Refunded'), ('Cancelled');

-- Payment statuses: ids 1 Pending, 2 Cleared, 3 Declined, 4 Refunded, 5 Partially refunded.
create table public.transaction_statuses (
    id bigint generated always as identity primary key,
    name text not null unique,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
insert into public.transaction_statuses (name)
values ('Pending'), ('Cleared'), ('Declined'), ('Refunded'), ('Partially refunded');

-- Payments. Card details are optional: not every payment method has them.
create table public.transactions (
    id bigint generated always as identity primary key,
    amount_cents bigint not null check (amount_cents >= 0),
    currency text not null check (currency ~ '^[A-Za-z]{3}$'),
    last_four text check (last_four ~ '^[0-9]{4}$'),
    bank_return_code text,
    expiry_month integer check (expiry_month between 1 and 12),
    expiry_year integer check (expiry_year between 2000 and 9999),
    payment_intent text,
    payment_method text,
    transaction_status_id bigint not null references public.transaction_statuses (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index transactions_transaction_status_id_idx on public.transactions (transaction_status_id);
create index transactions_payment_intent_idx on public.transactions (payment_intent)
    where payment_intent is not null;

-- Orders keep their history: deleting a widget, customer or transaction that an order references
-- fails instead of deleting the order.
create table public.orders (
    id bigint generated always as identity primary key,
    widget_id bigint not null references public.widgets (id) on delete restrict,
    transaction_id bigint not null references public.transactions (id) on delete restrict,
    status_id bigint not null references public.statuses (id) on delete restrict,
    customer_id bigint not null references public.customers (id) on delete restrict,
    quantity integer not null check (quantity > 0),
    amount_cents bigint not null check (amount_cents >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index orders_widget_id_idx on public.orders (widget_id);
create index orders_transaction_id_idx on public.orders (transaction_id);
-- The (fk, created_at) indexes serve both the foreign keys and "latest orders by status/customer".
create index orders_status_id_created_at_idx on public.orders (status_id, created_at);
create index orders_customer_id_created_at_idx on public.orders (customer_id, created_at);
create index orders_created_at_idx on public.orders (created_at);

-- People who log in to the store application (not database roles).
create table public.users (
    id bigint generated always as identity primary key,
    first_name text not null,
    last_name text not null,
    email text not null check (email like '%_@_%'),
    password_hash text not null check (password_hash <> ''),
    role text not null check (role in ('admin', 'developer', 'customer')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index users_email_key on public.users (lower(email));

-- Bearer tokens: only their hash is stored.
create table public.tokens (
    id bigint generated always as identity primary key,
    user_id bigint not null references public.users (id) on delete cascade,
    name text not null,
    email text not null,
    token_hash bytea not null unique check (octet_length(token_hash) > 0),
    expiry timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index tokens_user_id_idx on public.tokens (user_id);
create index tokens_expiry_idx on public.tokens (expiry);

-- HTTP sessions (the layout session stores such as scs's postgresstore expect).
create table public.sessions (
    token text primary key,
    data bytea not null,
    expiry timestamptz not null
);
create index sessions_expiry_idx on public.sessions (expiry);

create trigger set_updated_at before update on public.customers
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.widgets
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.statuses
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.transaction_statuses
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.transactions
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.orders
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.users
    for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.tokens
    for each row execute function public.set_updated_at();
