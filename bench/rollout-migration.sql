-- make bench: stands in for "the next release's migration" in the schema rollout run. bench/run.sh copies it
-- to a directory as NNNN_bench_rollout.sql (the version after the last embedded migration) and points
-- USUALSTORE_TEST_EXTRA_MIGRATIONS at it. A column with a default, an index, and a new table that the default
-- privileges already cover.
alter table public.widgets add column sku text not null default '';
create index widgets_sku_idx on public.widgets (sku);

create table public.widget_reviews (
    id bigint generated always as identity primary key,
    widget_id bigint not null references public.widgets (id) on delete restrict,
    stars smallint not null check (stars between 1 and 5),
    body text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index widget_reviews_widget_id_idx on public.widget_reviews (widget_id);
create trigger set_updated_at before update on public.widget_reviews
    for each row execute function public.set_updated_at();
