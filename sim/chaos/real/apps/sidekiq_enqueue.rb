# frozen_string_literal: true

# Enqueues the deploysim jobs 0..JOBS-1, in that order, with Sidekiq's own client:
#
#   ruby sidekiq_enqueue.rb JOBS ITEMS ITEM_TIME
#
# with DEPLOYSIM_BROKER set (see sidekiq_job.rb). One push_bulk puts them on queue:default with
# a single LPUSH of all the payloads in order, so job 0 is at the right end, the end BRPOP takes
# first. Prints the number of jobs pushed.

require_relative "sidekiq_job"

jobs, items = ARGV[0, 2].map { |arg| Integer(arg) }
item_time = Float(ARGV.fetch(2))

jids = Sidekiq::Client.push_bulk(
  "class" => DeploysimJob,
  "args" => Array.new(jobs) { |job| [job, items, item_time] }
)
raise "pushed #{jids.size} of #{jobs} jobs" unless jids.size == jobs

puts jids.size
