# frozen_string_literal: true

# The deploysim job for Sidekiq, loaded by the worker with `sidekiq -r THIS_FILE` and by
# sidekiq_enqueue.rb. It does the same work as deploysim.sim.chaos.real.work.run_job and writes
# the same records to the results database (DEPLOYSIM_RESULTS, database 1):
#
# - the list deploysim:events, one RPUSH a line: "S job container t" when an attempt starts,
#   "I job item container t" after each item, "D job container t" when the job completes;
# - the hash deploysim:items:JOB, counting the executions of each item;
# - the hash deploysim:results:JOB, each item's SHA-256 (the job's effects).
#
# Sidekiq itself runs on DEPLOYSIM_BROKER (database 0). Both are `unix:///path?db=N` URLs; the
# redis gem (4.8) takes only the path of a unix URL and drops its `db`, so the URLs are read
# here and given to the gem as a path and a database.
#
# Once the process has registered its first heartbeat (the launcher has started the fetching
# threads), it logs "deploysim: sidekiq ready": the harness waits for that line.

require "digest"
require "redis"
require "sidekiq"
require "uri"

module Deploysim
  EVENTS = "deploysim:events"

  # Redis connection options for a URL: unix URLs as a path and a db, others as they are.
  def self.redis_options(url)
    uri = URI(url)
    return {url: url} unless uri.scheme == "unix"

    query = URI.decode_www_form(uri.query || "").to_h
    {path: uri.path, db: Integer(query.fetch("db", "0"))}
  end

  def self.results
    @results ||= Redis.new(**redis_options(ENV.fetch("DEPLOYSIM_RESULTS")))
  end

  def self.now
    format("%.6f", Time.now.to_f)
  end
end

broker = Deploysim.redis_options(ENV.fetch("DEPLOYSIM_BROKER"))

Sidekiq.configure_client do |config|
  config.redis = broker
end

Sidekiq.configure_server do |config|
  config.redis = broker
  config.on(:heartbeat) do
    Sidekiq.logger.info("deploysim: sidekiq ready")
  end
end

# Runs job `job` from its first item: `items` items of `item_time` seconds each.
class DeploysimJob
  include Sidekiq::Job

  def perform(job, items, item_time)
    results = Deploysim.results
    container = ENV.fetch("DEPLOYSIM_CONTAINER", "?")
    results.rpush(Deploysim::EVENTS, "S #{job} #{container} #{Deploysim.now}")
    items.times do |item|
      sleep(item_time)
      digest = Digest::SHA256.hexdigest("#{job}:#{item}")
      results.multi do |transaction|
        transaction.hset("deploysim:results:#{job}", item.to_s, digest)
        transaction.hincrby("deploysim:items:#{job}", item.to_s, 1)
        transaction.rpush(Deploysim::EVENTS, "I #{job} #{item} #{container} #{Deploysim.now}")
      end
    end
    results.rpush(Deploysim::EVENTS, "D #{job} #{container} #{Deploysim.now}")
  end
end
